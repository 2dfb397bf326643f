"""Model adapters. Importing this package is cheap; torch, diffusers and ImageReward load inside the functions, so
a prefork parent that imports the tasks never touches CUDA."""

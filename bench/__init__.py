"""The benchmarks behind `adq bench …` and `make bench`: side-by-side runs that write data/results/.

They live beside the package in a checkout, as arq keeps its benchmarks, and are not installed. The folder
is not called ``benchmarks``: fairscale (an ImageReward dependency) installs a top-level package by that name."""

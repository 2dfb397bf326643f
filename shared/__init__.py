"""Adaptive student->teacher diffusion: the method as a library, plus the storage and database it serves from.

Nothing here imports torch at import time; model code lives in ``shared.models`` and ``shared.cascade`` and is
imported lazily by the worker processes that need it.
"""

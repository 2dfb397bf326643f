"""Data the package reads at run time, installed as ``shared.data`` (see ``shared/core/resources.py``)."""

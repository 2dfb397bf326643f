"""Data the package reads at run time, installed as ``adq.data`` (see ``shared/core/resources.py``)."""

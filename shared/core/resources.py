"""Where the package's own run-time files are.

The repository's ``data/`` folder is installed as the package ``adq.data`` (pyproject.toml, setup.py), so a
wheel, the Docker image and an editable checkout all find the shipped percentiles, prompt sets and shapes weights
through ``importlib.resources``, never through a path relative to a source file. ``ADQ_DATA_DIR`` replaces the
whole folder (an operator's own calibrations, say)."""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path

from adq.core.config import get_settings
from adq.core.errors import DataUnavailable

PACKAGE = "adq.data"


@cache
def shipped_data_dir() -> Path:
    """The data installed with the package, as a folder on disk."""
    root = importlib.resources.files(PACKAGE)
    if not isinstance(root, Path):  # a zipped install: the weights and percentiles are read as files
        raise DataUnavailable(f"{PACKAGE} is not installed as a folder ({root!r}); install the wheel unzipped")
    return root


def data_dir() -> Path:
    """``ADQ_DATA_DIR`` when set, else the data installed with the package."""
    configured = get_settings().data_dir
    if configured is None:
        return shipped_data_dir()
    if not configured.expanduser().is_dir():
        raise DataUnavailable(f"ADQ_DATA_DIR={configured} is not a folder")
    return configured.expanduser().resolve()


def data_path(*parts: str) -> Path:
    return data_dir().joinpath(*parts)

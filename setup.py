"""The package list: everything under the four code folders, plus data/ installed as ``shared.data``.

pyproject.toml holds the rest of the metadata; ``packages.find`` cannot name a folder mapped through
``package-dir``, which is why this file exists."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["shared*", "tasks*", "workers*", "gateway*"]), "shared.data"])

"""The package list: the repository's code folders installed as one package, ``adq``.

``shared/`` is ``adq`` itself (the method library, the job layer, the control plane, the SDK), and the other folders
are mapped into it: ``tasks/`` is ``adq.tasks``, ``gateway/`` ``adq.gateway``, ``workers/`` ``adq.workers``,
``cli/`` ``adq.cli`` and ``data/`` ``adq.data``. So a user's site-packages gains ``adq`` and the paper's
``adaptive_diffusion`` module, nothing with a generic name (tests/e2e/test_wheel.py). ``bench/`` and ``scripts/``
stay in the repository. pyproject.toml holds the rest of the metadata; ``packages.find`` cannot see mapped folders,
which is why this file exists."""

from setuptools import find_packages, setup

ROOMS = {"adq": "shared", "adq.tasks": "tasks", "adq.gateway": "gateway", "adq.workers": "workers", "adq.cli": "cli"}

packages = [name for pkg, folder in ROOMS.items() for name in (pkg, *(f"{pkg}.{p}" for p in find_packages(folder)))]
setup(packages=[*packages, "adq.data"], package_dir={**ROOMS, "adq.data": "data"})

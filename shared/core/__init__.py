"""Plumbing every room uses: the settings, the error root, logs, tracing, constants, the job-state vocabulary and
the ``module:attr`` loader. Imports nothing else from ``shared``."""

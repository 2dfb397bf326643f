"""Adaptive student->teacher diffusion as a library, in rooms that import downwards only (tests/unit/test_layers.py):

- ``core``: settings, the error root, logs, tracing, constants, the job-state vocabulary;
- ``method``: the paper's method (parameters, presets, cascade, percentiles, model adapters, the shapes world);
- ``jobs``: the job domain (database, stages and claims, model lane, storage, events, webhooks, batches);
- ``control``: live tau, the controller's policies, teacher-pool sizing and the day simulator;
- ``context``: the one per-process worker context that assembles them; ``sdk``: the HTTP client.

Nothing here imports torch at import time; the model adapters load it lazily in the worker processes that need it.
"""

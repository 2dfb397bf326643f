"""The job domain: the database, stages and their fenced claims, the model lane, storage, events, webhooks,
batches, retention and metrics. Imports ``method`` and ``core``; never the control plane, which the worker context
hands in (``adq.context``)."""

from adq.jobs.db import declared
from adq.method import presets

presets.add_source(declared.lookup)  # presets that pipeline workers declared in the database are known everywhere

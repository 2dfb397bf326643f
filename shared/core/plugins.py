"""Your own code, named ``package.module:attr`` in settings and flags (an estimator factory, a pipeline object)."""

from __future__ import annotations

import importlib

from adq.core.errors import InputError


def load_object(target: str | None, what: str):
    """The object at ``package.module:attr`` (attr may be dotted); InputError naming ``what`` and the target."""
    module_name, _, attr = (target or "").partition(":")
    if not module_name or not attr:
        raise InputError(f"{what} {target!r} must be package.module:attr")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"{what} {target!r} cannot be imported: {exc}") from None
    return obj

"""The settings reference, rendered from the one settings object (docs/settings.md, through the MkDocs hook in
scripts/docs_hooks.py)."""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from adq.core.config import Settings
from adq.core.constants import ENV_PREFIX


def _default(field) -> str:
    value = field.default
    if value is PydanticUndefined or value is None or value == "":
        return "unset"
    return f"`{value}`"


def _bounds(field) -> str:
    words = []
    for item in field.metadata:
        for name, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(item, name, None) is not None:
                words.append(f"{sign} {getattr(item, name)}")
    return ", ".join(words)


def rows() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in the order the settings object declares them."""
    out = []
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        bounds = _bounds(field)
        out.append((f"`{ENV_PREFIX}{name.upper()}`", _default(field), description + (f" ({bounds})" if bounds else "")))
    return out


def settings_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {var} | {default} | {meaning} |" for var, default, meaning in rows()]
    return "\n".join(lines)

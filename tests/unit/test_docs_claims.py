"""The pages' checkable claims hold: every ``ADQ_*`` name is a setting, every default a page gives a setting is its
default, every ``adq`` command and flag exists in the parser, every HTTP method and path is served, every header
named is one the code sends or reads, every repository path exists (and a command said to live in a file is
defined there), and every "below"/"above" pointer has a section to point to.

Each check runs on the README and docs/*.md (``claims_in``), and each has a test that feeds it the wrong claim it
exists to catch, so a check that stops looking fails too."""

from __future__ import annotations

import re
from functools import cache

import pytest

from adq.core.config import Settings
from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PRODUCT = ("shared", "tasks", "gateway", "workers", "cli")
TEST_ONLY_VARIABLES = {"ADQ_UPDATE_SCREENSHOTS"}  # read by the tests (tests/e2e/test_console.py), not the product
PROXY_HEADERS = {"X-Forwarded-For"}  # set by the operator's ingress, named in the deployment advice
NOT_OFFERED = ("not offered", "405")  # a sentence may name a method a path refuses
RETIRED = ("earlier", "replaced", "retired", "no longer", "changed from")  # a sentence may name what was removed
UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
SECONDS = {"ms": 0.001, "s": 1, "second": 1, "seconds": 1, "min": 60, "minute": 60, "minutes": 60, "h": 3600}
SECONDS |= {"hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
STOP = {"the", "and", "with", "that", "this", "from", "into", "each", "their", "them", "when", "what", "below"}


# --- what the code says -----------------------------------------------------------------------------------------


@cache
def settings_defaults() -> dict[str, object]:
    return {f"ADQ_{name.upper()}": field.default for name, field in Settings.model_fields.items()}


@cache
def commands() -> dict[tuple[str, ...], set[str]]:
    """Each command path (("submit",), ("bench", "quality"), …) and the option strings it takes."""
    import argparse

    from adq.cli import build_parser

    out: dict[tuple[str, ...], set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        out[path] = {s for a in parser._actions for s in a.option_strings}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return out


@cache
def routes() -> list[tuple[str, re.Pattern]]:
    """(method, path pattern) for every operation in the OpenAPI document, and the routes it leaves out (the
    console's pages, /metrics, the probes)."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount

    from adq.gateway.app import create_app

    app = create_app()
    found = [(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops]
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            found += [(m, route.path) for m in route.methods]
        elif isinstance(route, Mount):
            found += [("GET", route.path + "/{path}")]
    return [(m, re.compile(re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(p)) + "$")) for m, p in found]


@cache
def product_text() -> str:
    return "\n".join(p.read_text() for folder in PRODUCT for p in sorted((ROOT / folder).rglob("*.py"))).lower()


# --- the checks: each returns what is wrong in one page's text ------------------------------------------------


def wrong_setting_names(text: str) -> list[str]:
    names = set(re.findall(r"\bADQ_[A-Z0-9_]*[A-Z0-9]\b", text))
    return sorted(n for n in names - TEST_ONLY_VARIABLES if n not in settings_defaults())


def _value(token: str, unit: str, name: str) -> float | str | None:
    """A stated default in the setting's own units, or None when the words are not a value."""
    token, unit = token.strip("`").lower(), unit.lower()
    if token in ("true", "false", "off", "on"):
        return {"true": True, "on": True}.get(token, False)
    try:
        number = float(token.replace(",", "").replace("_", ""))
    except ValueError:
        return None
    if name.endswith("_BYTES") and unit in UNITS:
        return number * UNITS[unit]
    if name.endswith("_S") and unit in SECONDS:
        return number * SECONDS[unit]
    if unit in UNITS or unit in SECONDS:
        return None  # a unit this setting is not counted in: not a statement of its default
    return number


DEFAULT_STATED = re.compile(
    r"`(ADQ_[A-Z0-9_]+)`"
    r"(?:\s*\((?:default\s+)?`?(?P<a>[\d.,_]+|true|false)`?\s*(?P<ua>[A-Za-z]*)\)"  # `ADQ_X` (3 MiB)
    r"|[^.;|`]{0,60}?\bdefaults?\b(?:\s+(?:to|is|of))?:?\s+`?(?P<b>[\d.,_]+|true|false)`?\s*(?P<ub>[A-Za-z]*)"
    r"|\s*\|\s*`?(?P<c>[\d.,_]+|true|false)`?\s*(?P<uc>[A-Za-z]*)\s*\|)"  # a table: | `ADQ_X` | 3 MiB |
)


def wrong_defaults(text: str) -> list[str]:
    wrong = []
    for m in DEFAULT_STATED.finditer(text):
        name = m.group(1)
        token = m.group("a") or m.group("b") or m.group("c")
        unit = m.group("ua") or m.group("ub") or m.group("uc") or ""
        if name not in settings_defaults() or token is None:
            continue
        stated, actual = _value(token.rstrip(".,"), unit, name), settings_defaults()[name]
        if stated is None or actual is None:
            continue
        if isinstance(stated, bool) or isinstance(actual, bool):
            ok = stated == actual
        else:
            ok = isinstance(actual, int | float) and abs(float(actual) - stated) <= 1e-9 * max(1.0, abs(stated))
        if not ok:
            wrong.append(f"{name}: the page says {token} {unit}".strip() + f", the default is {actual!r}")
    return wrong


def _spans(text: str) -> list[str]:
    """Backticked spans and the lines of fenced code blocks: where a page writes a command."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    inline = re.sub(r"```.*?```", "", text, flags=re.S)
    return [line for b in blocks for line in b.splitlines()] + re.findall(r"`([^`\n]+)`", inline)


def wrong_commands(text: str) -> list[str]:
    wrong = []
    for span in _spans(text):
        for m in re.finditer(r"(?:^|[\s/(])adq((?:\s+[a-z][a-z0-9-]*)+)(.*?)(?=$|\||&&|;|#|\badq\b)", span):
            words = m.group(1).split()
            path: tuple[str, ...] = ()
            for word in words:  # the longest command path the words spell; the rest are arguments
                if (*path, word) in commands():
                    path = (*path, word)
                elif not path:
                    break
            if not path:
                wrong.append(f"adq {words[0]}: no such command")
                continue
            flags = re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", m.group(1) + m.group(2))
            wrong += [f"adq {' '.join(path)} {f}: no such flag" for f in flags if f not in commands()[path]]
    return wrong


def wrong_routes(text: str) -> list[str]:
    wrong = []
    for sentence in re.split(r"(?<=[.!?])\s|\|", text):
        if any(words in sentence for words in NOT_OFFERED):
            continue
        for method, path in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE)\s+(/[\w/{}.:-]*\w[}]?)", sentence):
            if not any(m == method and pattern.match(path) for m, pattern in routes()):
                wrong.append(f"{method} {path}: not served")
    return wrong


def wrong_headers(text: str) -> list[str]:
    wrong = []
    for sentence in re.split(r"(?<=[.!?])\s", text):
        if any(word in sentence.lower() for word in RETIRED):
            continue
        for header in set(re.findall(r"`(X-[A-Za-z0-9-]+|webhook-[a-z]+)`", sentence)) - PROXY_HEADERS:
            if f'"{header.lower()}"' not in product_text() and f"'{header.lower()}'" not in product_text():
                wrong.append(f"{header}: the code neither sends nor reads it")
    return wrong


def wrong_paths(text: str) -> list[str]:
    wrong = []
    folders = "shared|tasks|gateway|workers|cli|bench|scripts|infra|tests|data|docs"
    for path in re.findall(rf"`((?:{folders})/[\w./*-]+)", text):
        if not any(ROOT.glob(path.rstrip("/."))):
            wrong.append(f"{path}: no such file")
    for command, path in re.findall(r"`adq ([a-z-]+)[^`]*` in `([\w/]+\.py)", text):
        if (ROOT / path).is_file() and f'add_parser("{command}"' not in (ROOT / path).read_text():
            wrong.append(f"adq {command} is not defined in {path}")
    return wrong


def wrong_pointers(text: str) -> list[str]:
    """A "(… below …)" pointer needs a later heading that shares a word with it (and "above", an earlier one)."""
    wrong = []
    headings = [(m.start(), set(_words(m.group(1)))) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)]
    for m in re.finditer(r"\(([^()]*\b(below|above)\b[^()]*)\)", text):
        context = set(_words(text[max(0, m.start() - 80) : m.end()]))
        later = m.group(2) == "below"
        candidates = [words for at, words in headings if (at > m.end() if later else at < m.start())]
        if not any(context & words for words in candidates):
            wrong.append(f"({m.group(1)}): no section {m.group(2)} it to point to")
    return wrong


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-zτσ][\w-]{3,}", text.lower()) if w not in STOP]


CHECKS = (wrong_setting_names, wrong_defaults, wrong_commands, wrong_routes, wrong_headers, wrong_paths, wrong_pointers)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_every_page_holds(check):
    wrong = [f"{page.relative_to(ROOT)}: {w}" for page in PAGES for w in check(page.read_text())]
    assert wrong == []


# --- each check catches the claims that were wrong before it existed --------------------------------------------

ONCE_WRONG = [
    (wrong_defaults, "a request body over `ADQ_MAX_BODY_BYTES` (1 MiB) answers `413`"),
    (wrong_defaults, "| a JSON request body | `ADQ_MAX_BODY_BYTES` | 1 MiB | `413` |"),
    (wrong_headers, "in the body's `id` and the `X-ADQ-Event-Id` header) for receivers to deduplicate by."),
    (wrong_defaults, "The sweeper waits `ADQ_SWEEP_AFTER_S`, default 5 minutes, before it re-sends."),
    (wrong_paths, "`POST /v1/jobs`; or `adq submit` in `workers/commands.py`"),
    (wrong_paths, "`POST /v1/jobs`; or `adq submit` in `cli/services.py`"),
    (wrong_commands, "The settings reference (`adq settings --markdown`)."),
    (wrong_commands, "```\nadq submit 'a cat' --no-such-flag\n```"),
    (wrong_commands, "`adq bench quality --prompts 5 --jobs 3`"),
    (wrong_routes, "`DELETE /v1/jobs` removes every job"),
    (wrong_setting_names, "Set `ADQ_MAX_BODY_SIZE` to raise it."),
    (
        wrong_pointers,
        "## Live τ\n\nLive τ removes the drift itself (the real-system benchmark below).\n\n## Security\n",
    ),
    (wrong_pointers, "## Upgrades\n\nand so is the quality benchmark\n  (below).\n\n## Dependency set\n"),
]


@pytest.mark.parametrize("check, text", ONCE_WRONG)
def test_each_check_catches_a_wrong_claim(check, text):
    assert check(text) != []


def test_the_checks_pass_what_is_right():
    right = (
        "a body over `ADQ_MAX_BODY_BYTES` (3 MiB) answers; `adq submit 'x' --k 50 --wait`; `GET /v1/jobs/{id}`; "
        "the `webhook-id` header; `adq submit` in `cli/jobs.py`; `shared/jobs/storage.py`\n\n(see the table below)"
        "\n\n## The table\n"
    )
    assert [w for check in CHECKS for w in check(right)] == []


def test_image_keys_carry_the_fence_as_the_pages_say():
    """The σ floor and the image keys are claims about values a function computes: the pages quote the code."""
    from adq.jobs.storage import job_key

    reliability = (ROOT / "docs" / "reliability.md").read_text()
    assert job_key("<id>", "student", fence=0).replace("-f0", "-f<fence>") in reliability
    assert job_key("<id>", "final", fence=0).replace("-f0", "-f<fence>") in reliability
    models = (ROOT / "docs" / "models.md").read_text()
    source = (ROOT / "shared" / "method" / "params.py").read_text()
    assert "floor = 1 / get_settings().max_steps" in source and "σ has a floor of `1 / ADQ_MAX_STEPS`" in models

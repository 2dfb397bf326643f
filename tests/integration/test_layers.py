"""The layers hold: the method library imports no queue, process or HTTP code; inside it, each room imports only
the rooms below it; the packages mapped into ``adq`` (tasks, gateway, workers, cli) import only the layers below
them; nothing installed imports the benchmarks; and a worker's parent process (which imports the Celery app) loads
no torch, diffusers or transformers (CUDA does not survive fork)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

# The repository's folders and the names they install as (setup.py maps them into one package, adq).
FOLDERS = {"shared": "adq", "tasks": "adq.tasks", "gateway": "adq.gateway", "workers": "adq.workers", "cli": "adq.cli"}
OUTER = ("adq.tasks", "adq.gateway", "adq.workers", "adq.cli")
FORBIDDEN_IN_SHARED = ("celery", "kombu", *OUTER, "bench")
HEAVY = ("torch", "diffusers", "transformers")
# Each outer package and the outer packages it may import (the library, adq's own rooms, is open to all of them).
OUTER_LAYERS = {
    "adq.tasks": set(),
    "adq.gateway": {"adq.tasks"},
    "adq.workers": {"adq.tasks"},
    "adq.cli": {"adq.tasks", "adq.gateway", "adq.workers", "bench"},
    "bench": {"adq.tasks", "adq.gateway", "adq.workers"},
}


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _under(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _imports(path: Path):
    """(line, module) for every absolute import in the file, inside functions too."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from ((node.lineno, f"{node.module}.{a.name}") for a in node.names)


def test_the_library_imports_no_queue_process_or_http_code():
    loaded = _loaded_after(
        "import pkgutil, importlib, adq\n"
        "names = [m.name for m in pkgutil.walk_packages(adq.__path__, 'adq.')]\n"
        "assert len(names) > 20, names\n"
        "[importlib.import_module(n) for n in names]"
    )
    assert "adq.method.models.diffusion" in loaded and "torch" in loaded  # every module was imported, the models too
    assert not [m for m in loaded if _under(m, FORBIDDEN_IN_SHARED)]


def test_worker_parent_loads_no_torch_diffusers_or_transformers():
    # What `adq worker teacher` runs in the parent before Celery forks its pool.
    loaded = _loaded_after("import adq.tasks, adq.workers.launch, adq.cli; adq.cli.build_parser()")
    assert "celery" in loaded and "adq.tasks.app" in loaded
    assert not [m for m in loaded if _under(m, HEAVY)]


def test_no_module_imports_the_repository_folders_by_their_own_names():
    """`import shared` works in a checkout (its root is on sys.path) and nowhere else: every import goes through adq."""
    offenders = [
        f"{path}:{line} {name}"
        for folder in (*FOLDERS, "bench", "tests", "scripts")
        for path in sorted(Path(folder).rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in FOLDERS
    ]
    assert offenders == []


def test_the_library_imports_no_upper_layer_even_inside_functions():
    """Imports inside functions escape the import test above (the old client imported tasks lazily)."""
    offenders = [
        f"{path}:{line} {name}"
        for path in sorted(Path("shared").rglob("*.py"))
        for line, name in _imports(path)
        if _under(name, FORBIDDEN_IN_SHARED)
    ]
    assert offenders == []


def test_each_outer_package_imports_only_the_layers_below_it():
    offenders = []
    for package, allowed in OUTER_LAYERS.items():
        folder = package.removeprefix("adq.")
        others = [p for p in OUTER_LAYERS if p != package and p not in allowed]
        offenders += [
            f"{path}:{line} {name}"
            for path in sorted(Path(folder).rglob("*.py"))
            for line, name in _imports(path)
            if _under(name, others)
        ]
    assert offenders == []


# Each room of the library (shared/, installed as adq) and the rooms it may import (besides itself).
ROOMS = {
    "core": set(),
    "method": {"core"},
    "jobs": {"core", "method"},
    "control": {"core", "method", "jobs"},
    "sdk": {"core", "jobs"},
    "context": {"core", "method", "jobs", "control"},
}


def test_each_room_of_the_library_imports_only_the_rooms_below_it():
    rooms_seen, offenders = set(), []
    for path in sorted(Path("shared").rglob("*.py")):
        parts = path.relative_to("shared").parts
        if parts == ("__init__.py",):
            continue
        room = parts[0].removesuffix(".py")
        assert room in ROOMS, f"{path}: shared/ holds a module outside the rooms {sorted(ROOMS)}"
        rooms_seen.add(room)
        for line, name in _imports(path):
            other = name.split(".")[1] if name.startswith("adq.") else None
            if other and other != room and other not in ROOMS[room] and f"adq.{other}" not in OUTER:
                offenders.append(f"{path}:{line} imports adq.{other}")
    assert rooms_seen == set(ROOMS)
    assert offenders == []


def test_modules_that_import_each_other_import_in_either_order():
    # presets reaches its file format at call time: presetfile, imported first, would otherwise meet a half-made
    # presets (an ImportError a user's notebook hit before the CLI ever did)
    for first in ("adq.method.presetfile", "adq.method.presets", "adq.jobs.groups", "adq.method.hosted"):
        out = subprocess.run([sys.executable, "-c", f"import {first}"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"import {first}: {out.stderr[-500:]}"

"""The layers hold: the method library imports no queue, process or HTTP code; inside it, each room imports only
the rooms below it; and a worker's parent process (which imports the Celery app) loads no torch, diffusers or
transformers (CUDA does not survive fork)."""

import json
import subprocess
import sys

FORBIDDEN_IN_SHARED = ("celery", "kombu", "tasks", "workers", "gateway")
HEAVY = ("torch", "diffusers", "transformers")


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_shared_imports_no_queue_process_or_http_code():
    loaded = _loaded_after(
        "import pkgutil, importlib, shared\n"
        "names = [m.name for m in pkgutil.walk_packages(shared.__path__, 'shared.')]\n"
        "assert len(names) > 20, names\n"
        "[importlib.import_module(n) for n in names]"
    )
    assert "shared" in loaded and "torch" in loaded  # every module was imported, the model code too
    assert not loaded & set(FORBIDDEN_IN_SHARED), sorted(loaded & set(FORBIDDEN_IN_SHARED))


def test_worker_parent_loads_no_torch_diffusers_or_transformers():
    # What `adq worker teacher` runs in the parent before Celery forks its pool.
    loaded = _loaded_after("import tasks, workers.launch, workers.cli; workers.cli.build_parser()")
    assert "celery" in loaded and "tasks" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_no_function_in_shared_imports_the_upper_layers_either():
    """Imports inside functions escape the import test above (the old client imported tasks lazily)."""
    import ast
    from pathlib import Path

    offenders = []
    for path in sorted(Path("shared").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN_IN_SHARED]
    assert offenders == []


# Each room of shared/ and the rooms it may import (besides itself). Imports inside functions count too.
ROOMS = {
    "core": set(),
    "method": {"core"},
    "jobs": {"core", "method"},
    "control": {"core", "method", "jobs"},
    "sdk": {"core", "jobs"},
    "context": {"core", "method", "jobs", "control"},
}


def _shared_imports(path):
    import ast

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "shared" else [f"shared.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "shared" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_each_room_of_shared_imports_only_the_rooms_below_it():
    from pathlib import Path

    rooms_seen, offenders = set(), []
    for path in sorted(Path("shared").rglob("*.py")):
        parts = path.relative_to("shared").parts
        if parts == ("__init__.py",):
            continue
        room = parts[0].removesuffix(".py")
        assert room in ROOMS, f"{path}: shared/ holds a module outside the rooms {sorted(ROOMS)}"
        rooms_seen.add(room)
        offenders += [
            f"{path}:{line} imports shared.{other}"
            for line, other in _shared_imports(path)
            if other != room and other not in ROOMS[room]
        ]
    assert rooms_seen == set(ROOMS)
    assert offenders == []

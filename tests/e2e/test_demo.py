"""`adq demo` on embedded defaults (filesystem broker, SQLite, file storage, real worker processes): no server."""

import os
import subprocess
import sys

from adq.method.shapes import world


def test_demo_runs_on_embedded_defaults(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(world.prompts("heldout", 5, seed=9)) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADQ_")}
    env |= {"ADQ_HOME": str(tmp_path / "home"), "ADQ_TORCH_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "adq.cli", "demo", "--prompts", str(prompts), "--k", "50"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "5 jobs, 5 succeeded" in out.stdout
    header = next(line for line in out.stdout.splitlines() if line.startswith("prompt "))
    assert header.split() == [
        "prompt",
        "score",
        "tau",
        "tau_source",
        "effective_k",
        "teacher",
        "steps",
        "latency_s",
        "image",
    ]
    rows = out.stdout.split(header, 1)[1].splitlines()[2:7]
    # Embedded defaults: no controller, so each job's own k; five scores are fewer than ADQ_LIVE_TAU_MIN_SCORES,
    # so tau is the calibration's.
    assert all(" calibration " in row and " 50 " in row for row in rows), rows
    gallery = tmp_path / "home" / "demo" / "index.html"
    assert "preset shapes" in gallery.read_text()
    assert len(list(gallery.parent.glob("*-final.png"))) == 5
    assert not list((tmp_path / "home" / "broker" / "queue").glob("*.msg"))  # every message consumed

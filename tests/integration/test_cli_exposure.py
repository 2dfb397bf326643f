"""`adq api` itself refuses a non-loopback address without API keys: it exits 2 with the message before it binds
anything (tests/unit/test_settings.py checks the rule; this, the command a user runs)."""

import os
import subprocess
import sys


def test_the_api_command_exits_before_binding_beyond_loopback_without_keys():
    env = {k: v for k, v in os.environ.items() if k not in ("ADQ_API_KEYS", "ADQ_API_INSECURE")}
    done = subprocess.run(
        [sys.executable, "-m", "adq.cli", "api", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2 and "--insecure" in done.stderr, done.stderr

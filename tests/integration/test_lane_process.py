"""The model lane's last resort, in a process of its own: a model call stuck past its time limit exits the process
(with STUCK_EXIT_CODE), so the supervisor restarts the worker instead of leaving a thread hung for ever."""

import subprocess
import sys

from adq.jobs.lane import STUCK_EXIT_CODE


def test_a_stuck_model_call_exits_the_process_so_it_is_restarted():
    code = (
        "import threading\n"
        "from adq.jobs.lane import ModelLane\n"
        "lane = ModelLane(lambda k: 1, lambda k: 0.0)\n"
        "lane.call(('x',), lambda items: threading.Event().wait(), None, timeout_s=0.5)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == STUCK_EXIT_CODE, done.stderr
    assert "not reached" not in done.stdout

"""Log lines: JSON off a terminal with the job's fields, text on a terminal, the gateway's request id."""

import io
import json
import logging
import threading

from adq.core import logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_job_stage_attempt_and_worker_of_their_own_thread():
    stream = io.StringIO()
    handler = logs.configure(logging.INFO, "auto", stream)  # not a terminal: JSON
    log = logging.getLogger("adq.test")
    try:

        def run(job: str, attempt: int):
            with logs.job_context(job_id=job, stage="teacher", attempt=attempt):
                log.info("working on %s", job)

        threads = [threading.Thread(target=run, args=(f"job-{i}", i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.warning("between jobs")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = _lines(stream)
    for line in lines[:4]:
        assert line["message"] == f"working on {line['job_id']}" and line["attempt"] == int(line["job_id"][-1])
        assert line["stage"] == "teacher" and line["level"] == "INFO" and line["logger"] == "adq.test"
    assert "job_id" not in lines[4] and lines[4]["worker"].endswith(str(__import__("os").getpid()))


def test_a_terminal_gets_text():
    stream = Terminal()
    handler = logs.configure(logging.INFO, "auto", stream)
    try:
        with logs.job_context(job_id="j1", stage="student", attempt=1):
            logging.getLogger("adq.test").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue().rstrip().endswith("adq.test: hello [job_id=j1 stage=student attempt=1]")


def test_gateway_lines_carry_the_request_id(sqlite_env):
    from fastapi.testclient import TestClient

    from adq.gateway.app import create_app

    stream = io.StringIO()
    handler = logs.configure(logging.INFO, "json", stream)
    try:
        r = TestClient(create_app()).post("/v1/jobs", json={"prompt": "a cat"}, headers={"X-Request-ID": "req-42"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert r.status_code == 202 and r.headers["X-Request-ID"] == "req-42"
    submitted = [line for line in _lines(stream) if "submitted" in line["message"]]
    assert submitted and submitted[0]["request_id"] == "req-42"

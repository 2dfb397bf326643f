"""The console page in a real browser (Debian's Chromium driven by Playwright) against a gateway served over HTTP,
on PostgreSQL, Redis and S3, with real student and teacher workers. Screenshots of each view go to docs/."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import IN_CI, configured, free_port

DOCS = Path(__file__).resolve().parents[2] / "docs"
# The screenshots in docs/ are the ones this test takes: ADQ_UPDATE_SCREENSHOTS=1 refreshes them there (else they go
# to the test's own folder, so a run leaves the working tree clean).
UPDATE_DOCS = os.environ.get("ADQ_UPDATE_SCREENSHOTS") == "1"
KEYS = {"ops": "ops-key-0123456789abcdef", "alice": "alice-key-0123456789abcd", "bob": "bob-key-0123456789abcdef"}


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (make test installs it)"
        pytest.fail(message + " (CI=true)") if IN_CI else pytest.skip(message)
    return path


class Gateway:
    """The gateway app served by uvicorn on a loopback port, in a thread of this process."""

    def __init__(self):
        import uvicorn

        from adq.gateway.app import create_app

        self.port = free_port()
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(100):
            if self.server.started:
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEYS[who]}"}, timeout=30)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture()
def console(system):
    env = {"ADQ_API_KEYS": ",".join(f"{n}:{k}" for n, k in KEYS.items()), "ADQ_OPERATOR_KEYS": "ops"}
    with configured(**env):
        gateway = Gateway()
        try:
            yield gateway
        finally:
            gateway.stop()


@pytest.fixture()
def page():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 860})
        yield tab
        browser.close()


def _wait_status(client: httpx.Client, job_id: str, wanted: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.get(f"/v1/jobs/{job_id}").json()
        if view["status"] in wanted:
            return view
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {view['status']}")


PIXELS = """async (sel) => {
  const img = document.querySelector(sel);
  await img.decode();
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, c.width, c.height).data).join(',');
}"""


def test_the_console_shows_jobs_live_images_decisions_and_cancels(system, console, page, tmp_path):
    shots = DOCS if UPDATE_DOCS else tmp_path
    system.worker("student")
    system.worker("teacher", ADQ_NULL_TEACHER_MS="60000")
    ops, alice = console.client("ops"), console.client("alice")

    # The key is taken from the fragment, kept in the tab, and leaves the address bar.
    page.goto(f"{console.url}/console#key={KEYS['ops']}")
    page.wait_for_selector("#live:has-text('live')")
    assert KEYS["ops"] not in page.url

    # Jobs appear live, from the event stream: submitted after the page loaded.
    routed = alice.post("/v1/jobs", json={"prompt": "a red lighthouse", "k": 100, "seed": 11}).json()["id"]
    kept = alice.post("/v1/jobs", json={"prompt": "a green field", "k": 0, "seed": 12}).json()["id"]
    page.wait_for_selector(f'tr[data-job="{routed}"][data-status="succeeded"]', timeout=60_000)
    page.wait_for_selector(f'tr[data-job="{kept}"][data-status="succeeded"]', timeout=60_000)
    page.wait_for_timeout(500)  # thumbnails
    page.screenshot(path=str(shots / "console-jobs.png"))

    # A teacher-routed job shows two different images, at full size, with its decision.
    page.click(f'tr[data-job="{routed}"] a')
    page.wait_for_selector("#decision dd:has-text('k=100')")
    student, final = page.evaluate(PIXELS, "#job-student"), page.evaluate(PIXELS, "#job-final")
    assert student and final and student != final
    assert page.get_attribute("#job-final", "alt").startswith("final image")
    page.wait_for_selector("#history li")
    page.screenshot(path=str(shots / "console-job.png"), full_page=True)

    # Cancel from the page: a job running on a slow teacher stops.
    slow = alice.post(
        "/v1/jobs", json={"prompt": "a slow one", "preset": "null", "k": 100, "teacher_steps": 20, "seed": 13}
    ).json()["id"]
    _wait_status(ops, slow, {"teacher_running"})
    page.goto(f"{console.url}/console#/job/{slow}")
    page.wait_for_selector("#decision dd:has-text('teacher_running')")
    page.click("#cancel")
    page.wait_for_selector("#action-result:has-text('cancelled')")
    assert _wait_status(ops, slow, {"cancelled"})["status"] == "cancelled"

    page.goto(f"{console.url}/console#/now")
    page.wait_for_selector("#share dd:has-text('%')")
    page.screenshot(path=str(shots / "console-now.png"))
    page.goto(f"{console.url}/console#/calibrations")
    page.wait_for_selector("#calibrations svg polyline")
    page.screenshot(path=str(shots / "console-calibrations.png"))
    assert all((shots / f"console-{view}.png").stat().st_size > 5000 for view in ("jobs", "job", "now", "calibrations"))


def test_a_tenant_key_never_sees_another_tenants_job(console, page):
    alice, bob = console.client("alice"), console.client("bob")
    theirs = alice.post("/v1/jobs", json={"prompt": "alice's secret", "seed": 1}).json()["id"]
    page.goto(f"{console.url}/console#key={KEYS['bob']}")
    page.wait_for_selector("#live:has-text('live')")
    mine = bob.post("/v1/jobs", json={"prompt": "bob's own", "seed": 2}).json()["id"]
    alice.post("/v1/jobs", json={"prompt": "alice again", "seed": 3})
    page.wait_for_selector(f'tr[data-job="{mine}"]', timeout=30_000)
    page.wait_for_timeout(1500)  # time for any event of alice's to arrive, if one could
    assert page.locator(f'tr[data-job="{theirs}"]').count() == 0
    assert "alice" not in page.inner_text("#jobs")
    # Her job's page is refused to bob, the same as through the API.
    page.goto(f"{console.url}/console#/job/{theirs}")
    page.wait_for_timeout(500)
    assert "alice's secret" not in page.content()
    assert bob.get(f"/v1/jobs/{theirs}").status_code == 404


def test_the_page_needs_no_internet_and_ships_as_package_data():
    import tomllib
    from fnmatch import fnmatch

    folder = Path(__file__).resolve().parents[2] / "gateway" / "console"
    globs = tomllib.loads((folder.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [p.name for p in folder.iterdir() if any(fnmatch(f"console/{p.name}", g) for g in globs["gateway"])]
    assert sorted(shipped) == sorted(p.name for p in folder.iterdir()) and "index.html" in shipped
    for path in folder.iterdir():
        text = path.read_text()
        # The only absolute URL is SVG's namespace name, which is never fetched.
        assert text.replace("http://www.w3.org/2000/svg", "").count("http") == 0, path.name

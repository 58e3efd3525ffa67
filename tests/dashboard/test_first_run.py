"""A fresh clone, run as the README says: `cp cameras.example.yaml cameras.yaml` and `maskwatch stack up`,
with the shipped models. No camera fails; the dashboard says there is no camera yet and photo upload works;
a camera added to the file appears without a restart.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import TEST_REDIS_PORT, flushed_redis
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, free_port, stop_process
from tests.stack.helpers import make_video, wait_for

DB = 15
pytestmark = pytest.mark.slow


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[str, Path, redis.Redis]]:
    """The stack on the example camera file copied as cameras.yaml; yields (dashboard URL, file, Redis)."""
    client = next(flushed_redis(DB))
    config = tmp_path / "cameras.yaml"
    shutil.copy(REPO / "cameras.example.yaml", config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MASKWATCH_MODELS"}  # the shipped models
    env.update(MASKWATCH_REDIS_URL=f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}", OMP_NUM_THREADS="1")
    log = (tmp_path / "stack.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "stack", "up", "--config", str(config),
                             "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 90, "the dashboard of the first-run stack")
        yield url, config, client
    finally:
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", (tmp_path / "stack.log").read_text())]
        stop_process(proc, timeout=25)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        client.flushdb()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_example_camera_file_gives_a_clear_empty_dashboard(first_run, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    url, config, _client = first_run
    time.sleep(2)  # capture has read the file and published its (empty) camera set
    assert httpx.get(f"{url}/api/v1/cameras", timeout=10).json() == []  # nothing configured, nothing failed
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        page = browser.new_page()
        page.goto(url)
        empty = page.locator("#empty")
        empty.wait_for(state="visible", timeout=20_000)
        assert "No camera yet: add one in cameras.yaml" in empty.inner_text()
        assert page.locator("#tiles .tile").count() == 0
        page.locator("#empty a").click()  # "upload a photo"
        page.wait_for_url(f"{url}/upload", timeout=10_000)

        # a camera added to the running stack's file replaces the empty state with its tile
        video = make_video(tmp_path / "door.avi", frames=40, fps=20)
        config.write_text(config.read_text().replace("cameras: []", f"cameras:\n  - {{id: door, url: {video}, "
                                                                    "loop: true}"))
        page.goto(url)
        page.locator("#empty").wait_for(state="hidden", timeout=30_000)
        assert [c["id"] for c in httpx.get(f"{url}/api/v1/cameras", timeout=10).json()] == ["door"]
        browser.close()

"""Camera credentials never leave the process: hostile URLs through the API, the feed, Redis, logs and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from shared import keys
from shared.redaction import redact_text, redact_url
from tests.conftest import REPO
from tests.stack.helpers import fields_text, free_port, redis_url, wait_for, write_config

SECRETS = ("p@ssW0rd", "ssW0rd", "Qu3ryPw", "admin", "t0kenV4l", "s1gn4ture", "k3yV4lue", "pa?ss")


def hostile_urls(port: int) -> dict[str, str]:
    """Camera id -> URL with credentials in every place a camera URL can carry them."""
    return {
        "at-in-password": f"rtsp://admin:p@ssW0rd@127.0.0.1:{port}/stream1",
        "query": f"http://127.0.0.1:{port}/video.cgi?user=admin&pwd=Qu3ryPw&resolution=640",
        "mixed": f"rtsp://admin:pa?ss@127.0.0.1:{port}/s?channel=2&token=t0kenV4l;Signature=s1gn4ture",
        "fragment": f"https://127.0.0.1:{port}/mjpeg?API-Key=k3yV4lue#access_token=t0kenV4l",
    }


@pytest.mark.parametrize(("url", "expected"), [
    ("rtsp://admin:p@ssW0rd@host/s", "rtsp://***@host/s"),
    ("http://host/video.cgi?user=admin&pwd=Qu3ryPw", "http://host/video.cgi?user=***&pwd=***"),
    ("rtsp://u:pa?ss@host:554/a?x=1&token=abc", "rtsp://***@host:554/a?x=1&token=***"),
    ("rtsp://a:b/c@host/s?Signature=xx;sig=yy", "rtsp://***@host/s?Signature=***;sig=***"),
    ("http://h/p?API-Key=zz&channel=1#access_token=qq", "http://h/p?API-Key=***&channel=1#access_token=***"),
    ("http://h/p?camera_password=9&apikey=1&auth=2&secret=3&credential=4&username=5",
     "http://h/p?camera_password=***&apikey=***&auth=***&secret=***&credential=***&username=***"),
    ("rediss://default:pw@redis:6380/0", "rediss://***@redis:6380/0"),
    ("rtsp://host/stream1?channel=1&subtype=0", "rtsp://host/stream1?channel=1&subtype=0"),
    ("/videos/lobby.mp4", "/videos/lobby.mp4"),
    ("0", "0"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_hides_urls_and_named_secrets() -> None:
    text = "Error connecting to rediss://u:hunter2@db:6380/0 with key abc123: refused"
    assert redact_text(text, ("abc123",)) == "Error connecting to rediss://***@db:6380/0 with key ***: refused"


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.slow
def test_hostile_urls_are_redacted_in_every_output(tmp_path: Path, capture_db: redis.Redis, services) -> None:
    dead = free_port(range(18400, 18500))  # nothing listens: every camera fails with an error line
    cameras = hostile_urls(dead)
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                          [{"id": cam, "url": url} for cam, url in cameras.items()],
                          capture={"reconnect_max": 1})
    capture = services.start("capture", "--config", str(config), name="capture")
    port = free_port(range(18500, 18600))
    dashboard = services.start("dashboard", "--config", str(config), "--port", str(port), name="dashboard")
    base = f"http://127.0.0.1:{port}"

    def all_errored() -> bool:
        return all(fields_text(capture_db, keys.camera_state(cam)).get("error") for cam in cameras)

    wait_for(all_errored, 60, "every hostile camera to report its error")
    states = {cam: fields_text(capture_db, keys.camera_state(cam)) for cam in cameras}
    assert not _leaks(json.dumps(states)), states
    assert states["at-in-password"]["url"] == f"rtsp://***@127.0.0.1:{dead}/stream1"

    def api_cameras() -> list[dict] | None:
        try:
            response = httpx.get(f"{base}/api/v1/cameras", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 and len(response.json()) == len(cameras) else None

    listed = wait_for(api_cameras, 60, "the dashboard to list the cameras")
    assert all(cam["url"] and cam["error"] for cam in listed)
    assert not _leaks(json.dumps(listed)), listed

    feed_text = ""
    with httpx.stream("GET", f"{base}/api/v1/feed", timeout=10) as stream:
        for line in stream.iter_lines():
            feed_text += line + "\n"
            if line.startswith("data:") and '"url"' in line:
                break
    assert "event: cameras" in feed_text and not _leaks(feed_text), feed_text

    detect = subprocess.run([sys.executable, "-m", "maskwatch.cli", "detect", *cameras.values(), "--no-progress"],
                            cwd=REPO, env=services.env, capture_output=True, text=True, timeout=120)
    assert detect.returncode == 1
    errors = [line for line in detect.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(cameras), detect.stderr
    assert not _leaks(detect.stdout + detect.stderr), detect.stderr

    assert services.stop(capture) == 0
    assert services.stop(dashboard) == 0
    capture_log = services.log(capture)
    assert "camera at-in-password: retrying: rtsp://***@127.0.0.1" in capture_log
    assert not _leaks(capture_log + services.log(dashboard)), capture_log

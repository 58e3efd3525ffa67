"""Camera credentials never leave the process: hostile URLs through the API, the feed, Redis, logs and the CLI."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

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
        # the second probe's forms
        "hash-in-password": f"rtsp://admin:ssW0rd#1@127.0.0.1:{port}/stream1",
        "path-credentials": f"rtsp://127.0.0.1:{port}/user=admin_password=Qu3ryPw_channel=1_stream=0.sdp",
        "matrix": f"rtsp://127.0.0.1:{port}/axis-media/media.amp;user=root;password=t0kenV4l",
        "no-scheme": f"admin:k3yV4lue@127.0.0.1:{port}/stream1",
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
    ("/videos/lobby@2x.mp4", "/videos/lobby@2x.mp4"),
    ("0", "0"),
    # the second probe's forms
    ("rtsp://admin:pa#ss@host:554/s", "rtsp://***@host:554/s"),
    ("rtsp://10.0.0.5:554/user=admin_password=tlJwpbo6_channel=1_stream=0.sdp?real_stream",
     "rtsp://10.0.0.5:554/user=***?real_stream"),
    ("rtsp://10.0.0.5/cam/channel=1_user=admin_password=x_y", "rtsp://10.0.0.5/cam/channel=1_user=***"),
    ("rtsp://host/axis-media/media.amp;user=root;password=S3cret;resolution=640x480",
     "rtsp://host/axis-media/media.amp;user=***;password=***;resolution=640x480"),
    ("admin:pw@192.168.1.10:554/stream1", "***@192.168.1.10:554/stream1"),
    ("/etc/maskwatch/admin:p/w@10.0.0.1:554/s", "/etc/maskwatch/***@10.0.0.1:554/s"),
    ("http://cam/videostream.cgi?loginuse=admin&loginpas=S3cret", "http://cam/videostream.cgi?loginuse=***&loginpas=***"),
    ("rtsp://admin:x@[fe80::1]:554/s", "rtsp://***@[fe80::1]:554/s"),
    ("rtsp://host/s?token=a@evil.com", "rtsp://***"),  # reads two ways: both readings' secrets hidden
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# Generated URLs: a secret (between two markers, so a secret cut in two is caught) in every place camera
# vendors put credentials, made of every character a user may type there.
MARKS = ("Qk7Zp", "Wx3Jv")
ANY = string.ascii_letters + string.digits + "!#$%&()*+,-./:;=?@[]^_`{|}~"  # a userinfo password, as typed
VALUE = ANY.translate(str.maketrans("", "", "&;/?#"))  # a parameter value ends at these
hosts = st.sampled_from(["192.168.1.64", "cam.local", "[fe80::1]", "10.0.0.5", "nvr-2.example.com"])
ports = st.sampled_from(["", ":554", ":8080", ":80"])
schemes = st.sampled_from(["rtsp://", "http://", "https://", "rtsps://", "rtmp://"])
paths = st.sampled_from(["", "/", "/Streaming/Channels/101", "/cam/realmonitor", "/h264/ch1/main/av_stream"])
queries = st.sampled_from(["", "?channel=1&subtype=0", "?resolution=640x480"])
SECRET_PARAMS = ("password", "pwd", "pass", "passwd", "psw", "loginpas", "token", "access_token", "auth",
                 "key", "apikey", "api_key", "signature", "sig", "user", "usr", "loginuse", "camera_password")


def secrets(alphabet: str) -> st.SearchStrategy[str]:
    return st.text(alphabet, max_size=12).map(lambda middle: MARKS[0] + middle + MARKS[1])


@st.composite
def camera_urls(draw: st.DrawFn) -> tuple[str, str]:
    """(url, host) with one secret in one of the places a camera vendor uses."""
    scheme, host, port, path, query = draw(schemes), draw(hosts), draw(ports), draw(paths), draw(queries)
    place = draw(st.sampled_from(["password", "user", "query", "fragment", "dahua", "matrix", "bare", "bare-path"]))
    if place == "password":
        url = f"{scheme}admin:{draw(secrets(ANY))}@{host}{port}{path}{query}"
    elif place == "user":
        url = f"{scheme}{draw(secrets(ANY.replace(':', '')))}:pw@{host}{port}{path}{query}"
    elif place in ("query", "fragment"):
        param = f"{draw(st.sampled_from(SECRET_PARAMS))}={draw(secrets(VALUE))}"
        glue = "#" if place == "fragment" else ("&" if query else "?")
        url = f"{scheme}{host}{port}{path}{query}{glue}{param}"
    elif place == "dahua":
        url = f"{scheme}{host}{port}/user=admin_password={draw(secrets(VALUE))}_channel=1_stream=0.sdp{query}"
    elif place == "matrix":
        url = f"{scheme}{host}{port}/axis-media/media.amp;user=root;password={draw(secrets(VALUE))}{query}"
    elif place == "bare":
        url = f"admin:{draw(secrets(ANY))}@{host}{port}{path}"
    else:
        url = f"/srv/cams/admin:{draw(secrets(ANY))}@{host}{port}{path}"
    return url, host


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(camera_urls())
def test_no_generated_url_leaks_its_secret(case: tuple[str, str]) -> None:
    url, host = case
    for shown in (redact_url(url), redact_text(f"error: camera door: {url}: cannot open (timeout)")):
        assert MARKS[0] not in shown and MARKS[1] not in shown, (url, shown)
    assert redact_url(redact_url(url)) == redact_url(url)  # idempotent: redacting twice changes nothing


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

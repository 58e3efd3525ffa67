"""docker-compose.yml for real: the project's images built from deploy/Dockerfile, the stack started with
`docker compose up -d` (Compose v2, else docker-compose 1.29) and checked through the published port only.

deploy/test-compose.sh prepares the engine and images (installs and starts one where there is none, makes
stand-in base images where no registry answers). The tests run in file order against one stack: scaling,
a Redis restart, a model promotion and the monitoring profile come after the first results, `down` last.
Skip them with MASKWATCH_SKIP_COMPOSE=1 (or `-m "not compose"`); .ci/run runs them.
Timings (up -> dashboard answering, up -> first result) go to test-output/compose-timings.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest
import yaml

from services.dashboard.stats import EVENTS_KEPT
from tests.conftest import REPO
from tests.stack.helpers import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.compose]

SKIP_ENV = "MASKWATCH_SKIP_COMPOSE"
PREPARED_ENV = "MASKWATCH_COMPOSE_PREPARED"  # set by deploy/test-compose.sh: images are built already
PROJECT = "maskwatch-composetest"  # not the user's `maskwatch` project: its containers and volumes are left alone
COMPOSE_FILE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
# the MQTT bridge runs too (its broker is unreachable here: it keeps its events and retries, and stays healthy)
PROFILES = [p for p in ("mqtt",) if any(p in spec.get("profiles", []) for spec in COMPOSE_FILE["services"].values())]
DEFAULT_SERVICES = sorted(name for name, spec in COMPOSE_FILE["services"].items()
                          if set(spec.get("profiles", [])) <= set(PROFILES))
CAMERA = "door"
CLIP_SECONDS = 8  # the start of the airport clip, replayed as a camera (loop: true)


def _grace_s(service: str) -> float:
    spec = COMPOSE_FILE["services"][service].get("stop_grace_period", "10s")
    return float(str(spec).removesuffix("s"))


class Compose:
    """`docker compose -p PROJECT ...` (or docker-compose) with the test's camera file, videos and ports."""

    def __init__(self, env: dict[str, str]) -> None:
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
        self.command = ["docker", "compose"] if v2 else ["docker-compose"]
        self.env = {**os.environ, **env}

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        profiles = [arg for profile in PROFILES for arg in ("--profile", profile)]
        out = subprocess.run([*self.command, "-p", PROJECT, *profiles, *args], cwd=REPO, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check:
            assert out.returncode == 0, f"{' '.join(args)}: {out.stdout[-2000:]}{out.stderr[-3000:]}"
        return out

    def containers(self) -> list[dict]:
        """`docker inspect` of every container of the project (running or not)."""
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return []
        return json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                         check=True).stdout)


def _service(container: dict) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def _make_clip(source: Path, target: Path) -> Path:
    """The first CLIP_SECONDS of `source`, re-encoded (mp4v): the camera's video file."""
    reader = cv2.VideoCapture(str(source))
    fps = reader.get(cv2.CAP_PROP_FPS) or 25.0
    size = int(reader.get(cv2.CAP_PROP_FRAME_WIDTH)), int(reader.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(int(fps * CLIP_SECONDS)):
        ok, frame = reader.read()
        if not ok:
            break
        writer.write(frame)
    writer.release()
    reader.release()
    target.chmod(0o644)
    return target


@pytest.fixture(scope="module")
def engine() -> None:
    """A running engine and the project's images (deploy/test-compose.sh prepare, unless it ran already)."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1")
    if os.environ.get(PREPARED_ENV) == "1":
        return
    if shutil.which("docker") is None and os.geteuid() != 0:
        pytest.skip("no container engine and not root to install one (run deploy/test-compose.sh as root)")
    out = subprocess.run([str(REPO / "deploy" / "test-compose.sh"), "prepare"], cwd=REPO, capture_output=True,
                         text=True, timeout=3000)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    os.environ[PREPARED_ENV] = "1"  # once per session


@pytest.fixture(scope="module")
def stack(engine: None, airport_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The stack started with `up -d` on a camera file that replays a clip from ./videos; removed at the end."""
    folder = tmp_path_factory.mktemp("compose")
    videos = folder / "videos"
    videos.mkdir()
    videos.chmod(0o755)  # the services run as uid 10001
    _make_clip(airport_video, videos / "airport-start.mp4")
    config = folder / "cameras.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": CAMERA, "url": "/videos/airport-start.mp4", "fps": 5, "loop": True}],
        "detector": {"threads": 1},
        **({"mqtt": {"url": "mqtt://mqtt-broker.invalid:1883"}} if PROFILES else {}),
    }))
    config.chmod(0o644)
    ports = {"MASKWATCH_PORT": free_port(range(18400, 18500)),
             "MASKWATCH_PROMETHEUS_PORT": free_port(range(19400, 19500)),
             "MASKWATCH_ALERTMANAGER_PORT": free_port(range(19500, 19600)),
             "MASKWATCH_GRAFANA_PORT": free_port(range(19600, 19700))}
    compose = Compose({"MASKWATCH_CONFIG": str(config), "MASKWATCH_VIDEOS": str(videos),
                       **{k: str(v) for k, v in ports.items()}})
    compose("--profile", "monitoring", "down", "-v", "--remove-orphans", "-t", "5")  # a previous run's leftovers
    base = f"http://127.0.0.1:{ports['MASKWATCH_PORT']}"
    start = time.monotonic()
    compose("up", "-d")
    timings = {"compose": " ".join(compose.command)}
    with httpx.Client(base_url=base, timeout=5.0) as http:
        def answers() -> bool:
            try:
                return http.get("/api/v1/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 180, "the dashboard answering")
        timings["up_to_dashboard_s"] = round(time.monotonic() - start, 1)

        def first_result() -> bool:
            cameras = http.get("/api/v1/cameras").json()
            return any(c["id"] == CAMERA and c["latest"] for c in cameras)

        wait_for(first_result, 240, "the camera's first result", interval=0.5)
        timings["up_to_first_result_s"] = round(time.monotonic() - start, 1)
        image = json.loads(subprocess.run(["docker", "image", "inspect", "maskwatch:latest"], capture_output=True,
                                          text=True, check=True).stdout)[0]
        timings["image_mb"] = round(image["Size"] / 1e6)
        (REPO / "test-output").mkdir(exist_ok=True)
        (REPO / "test-output" / "compose-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
        print(f"compose timings: {timings}")
        try:
            yield {"compose": compose, "http": http, "config": config, "folder": folder}
        finally:
            if compose.containers():  # a test failed before `down`: what the services said
                print(compose("--profile", "monitoring", "logs", "--no-color", "--tail", "60", check=False).stdout)
            compose("--profile", "monitoring", "down", "-v", "--remove-orphans", "-t", "5", check=False)


def _all_healthy(compose: Compose, services: list[str], timeout: float = 180) -> list[dict]:
    """Wait until every service has a running container and every container with a healthcheck is healthy."""
    def healthy() -> list[dict] | None:
        running = [c for c in compose.containers() if c["State"]["Running"]]
        if {_service(c) for c in running} < set(services):
            return None
        checked = [c for c in running if _service(c) in services]
        if all(c["State"].get("Health", {}).get("Status", "healthy") == "healthy" for c in checked):
            return checked
        return None

    try:
        return wait_for(healthy, timeout, "every service healthy", interval=1.0)
    except AssertionError:
        states = {c["Name"]: (c["State"]["Status"], c["State"].get("Health", {}).get("Status"),
                              [h["Output"][-200:] for h in c["State"].get("Health", {}).get("Log", [])[-1:]])
                  for c in compose.containers()}
        raise AssertionError(f"not every service healthy: {states}") from None


def _people(http: httpx.Client) -> list[dict]:
    events = http.get(f"/api/v1/cameras/{CAMERA}/events", params={"limit": EVENTS_KEPT}).json()
    return [e for e in events if e["type"] == "person"]


def test_every_service_runs_healthy_with_its_healthcheck(stack: dict) -> None:
    checked = _all_healthy(stack["compose"], DEFAULT_SERVICES)
    for container in checked:
        if container["Config"]["Image"].startswith("maskwatch"):
            assert container["Config"].get("Healthcheck", {}).get("Test"), f"{_service(container)}: no healthcheck"
            assert container["Config"]["User"] == "10001", _service(container)
            # PID 1 is an init that forwards signals and reaps (tini), maskwatch runs under it
            assert container["Path"] == "tini" or container["HostConfig"].get("Init"), _service(container)


def test_dashboard_answers_and_the_camera_goes_live(stack: dict) -> None:
    http = stack["http"]
    page = http.get("/")
    assert page.status_code == 200 and "maskwatch" in page.text.lower()
    assert http.get("/api/v1/health").json() == {"status": "ok", "redis": True}
    [camera] = [c for c in http.get("/api/v1/cameras").json() if c["id"] == CAMERA]
    assert camera["status"] == "live" and camera["up"], camera
    assert camera["url"] == "/videos/airport-start.mp4" and camera["frames_processed"] > 0


def test_results_and_people_arrive(stack: dict) -> None:
    http = stack["http"]
    wait_for(lambda: _people(http), 240, "person records", interval=1.0)
    stats = http.get(f"/api/v1/cameras/{CAMERA}/stats", params={"window": "1h"}).json()
    assert stats["frames"] > 0 and sum(stats["faces"].values()) > 0
    assert set(_people(http)[0]) >= {"track_id", "label"}


def test_metrics_scrape(stack: dict) -> None:
    text = stack["http"].get("/metrics").text
    assert f'camera="{CAMERA}"' in text and "maskwatch_" in text
    assert "# TYPE" in text


def test_two_detectors_count_each_person_once(stack: dict) -> None:
    compose, http = stack["compose"], stack["http"]
    compose("up", "-d", "--scale", "detector=2")
    detectors = [c for c in _all_healthy(compose, DEFAULT_SERVICES) if _service(c) == "detector"]
    assert len(detectors) == 2

    def both_working() -> bool:
        keys = compose("exec", "-T", "redis", "redis-cli", "--scan", "--pattern", "maskwatch:detector:*").stdout
        return len(keys.split()) >= 2

    wait_for(both_working, 180, "frames answered by both detectors", interval=2.0)
    before = len(_people(http))
    wait_for(lambda: len(_people(http)) > before, 240, "people recorded with two detectors", interval=2.0)
    people = _people(http)
    tracks = [p["track_id"] for p in people]
    assert len(tracks) == len(set(tracks)), f"a person was recorded twice: {sorted(tracks)}"


def test_redis_restart_recovers(stack: dict) -> None:
    compose, http = stack["compose"], stack["http"]
    [camera] = [c for c in http.get("/api/v1/cameras").json() if c["id"] == CAMERA]
    compose("restart", "redis")

    def processing_again() -> bool:
        try:
            answer = http.get("/api/v1/cameras")
            if answer.status_code != 200:  # 503 `redis unavailable` while it restarts
                return False
            [now] = [c for c in answer.json() if c["id"] == CAMERA]
        except (httpx.HTTPError, ValueError):
            return False
        return now["status"] == "live" and now["frames_processed"] > camera["frames_processed"] + 10

    wait_for(processing_again, 240, "frames processed after the Redis restart", interval=1.0)
    _all_healthy(compose, DEFAULT_SERVICES)


def test_a_promoted_model_reaches_the_detectors(stack: dict) -> None:
    compose, http = stack["compose"], stack["http"]
    current = http.get("/api/v1/model").json()["promoted"]["classifier"]["version"]
    listed = compose("run", "--rm", "--no-deps", "dashboard", "models", "list").stdout.splitlines()
    versions = [line.removeprefix("*").split()[0] for line in listed if line.strip()]
    others = [v for v in versions if v != current]
    assert others, f"the image ships no other classifier version to promote: {listed}"
    compose("run", "--rm", "--no-deps", "dashboard", "models", "promote", others[0])
    assert http.get("/api/v1/model").json()["promoted"]["classifier"]["version"] == others[0]
    wait_for(lambda: others[0] in (http.get("/api/v1/model").json()["cameras"].get(CAMERA) or ""), 180,
             "the detectors running the promoted classifier", interval=1.0)


def test_the_monitoring_profile_scrapes_the_stack(stack: dict) -> None:
    compose = stack["compose"]
    compose("--profile", "monitoring", "up", "-d", "prometheus")
    prometheus = f"http://127.0.0.1:{compose.env['MASKWATCH_PROMETHEUS_PORT']}"

    def scraped() -> list | None:
        try:
            reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": "maskwatch_redis_up"}, timeout=5)
            return reply.json()["data"]["result"] or None
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    [series] = wait_for(scraped, 180, "Prometheus scraping the dashboard", interval=2.0)
    assert series["metric"]["job"] and series["value"][1] == "1"
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    assert any(t["health"] == "up" and "dashboard:8000" in t["scrapeUrl"] for t in targets), targets


def test_down_stops_every_container_within_its_grace_period_with_exit_code_0(stack: dict) -> None:
    compose = stack["compose"]
    running = [c for c in compose.containers() if c["State"]["Running"]]
    assert {_service(c) for c in running} >= set(DEFAULT_SERVICES)
    logs = compose("--profile", "monitoring", "logs", "--no-color").stdout
    (REPO / "test-output").mkdir(exist_ok=True)
    (REPO / "test-output" / "compose-logs.txt").write_text(logs)
    assert "Traceback" not in logs, "a traceback in the services' logs: test-output/compose-logs.txt"
    since = f"{time.time():.3f}"
    start = time.monotonic()
    compose("--profile", "monitoring", "down")
    took = time.monotonic() - start
    assert compose.containers() == []
    # exit codes from the engine's event log (`docker wait` could miss them: Compose v2 removes a container
    # as soon as it stopped); a container still running at the end of its grace period is killed: 137, not 0
    died = subprocess.run(["docker", "events", "--since", since, "--until", f"{time.time() + 1:.3f}",
                           "--filter", "type=container", "--filter", "event=die",
                           "--filter", f"label=com.docker.compose.project={PROJECT}",
                           "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"],
                          capture_output=True, text=True, timeout=60, check=True).stdout.split()
    codes = dict(zip(died[::2], died[1::2], strict=True))
    assert codes == {c["Name"].lstrip("/"): "0" for c in running}
    report = REPO / "test-output" / "compose-timings.json"
    if report.is_file():
        report.write_text(json.dumps({**json.loads(report.read_text()), "down_s": round(took, 1)}, indent=2) + "\n")
    # compose stops the dependants first, then what they depend on (two or three rounds, each within a grace)
    grace = max(_grace_s(_service(c)) for c in running)
    assert took < 2 * grace, f"down took {took:.0f} s (grace period {grace:.0f} s)"


def test_an_unreadable_camera_file_is_one_clear_line(engine: None, tmp_path: Path) -> None:
    private = tmp_path / "cameras.yaml"
    private.write_text("cameras: []\n")
    private.chmod(0o600)  # what `cp` gives under umask 077: the container's uid 10001 cannot read it
    compose = Compose({"MASKWATCH_CONFIG": str(private), "MASKWATCH_VIDEOS": str(tmp_path)})
    out = compose("run", "--rm", "--no-deps", "capture", check=False, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Permission denied" in out.stderr and "uid 10001" in out.stderr and "chmod a+r" in out.stderr
    assert "Traceback" not in out.stderr

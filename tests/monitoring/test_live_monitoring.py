"""Prometheus scraping a running `maskwatch stack up`, its alert rules firing into Alertmanager and on to a
webhook, and every Grafana panel query answered with series. Real Debian prometheus and alertmanager
binaries, loopback only, 1 s scrape and evaluation intervals so that it stays quick.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest
import redis
import yaml

from tests.conftest import REPO, flushed_redis
from tests.stack.helpers import free_port, redis_url, wait_for, write_config
from tests.tracking.synthetic import Walker, write_clip
from tests.tracking.webhook_server import WebhookServer, webhook_server

DB = 14
pytestmark = pytest.mark.slow
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "maskwatch.json"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus prometheus-alertmanager; .ci/run does)")
    return path


class Monitoring:
    """A running Prometheus (and Alertmanager): its HTTP API and the webhook the alerts reach."""

    def __init__(self, prometheus: str, alertmanager: str, hook: WebhookServer) -> None:
        self.prometheus, self.alertmanager, self.hook = prometheus, alertmanager, hook

    def query(self, expr: str) -> list[dict]:
        """The instant vector `expr` evaluates to now."""
        reply = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert reply["status"] == "success", reply
        return reply["data"]["result"]


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from flushed_redis(DB)


@pytest.fixture
def monitored_stack(tmp_path: Path, db: redis.Redis, services, shared_data: Path) -> Iterator[Monitoring]:
    """The stack with a looped clip of a walking face (`hall`) and a camera whose file is missing (`gone`)."""
    prometheus_bin, alertmanager_bin = _binary("prometheus"), _binary("prometheus-alertmanager")
    face = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00002.jpg"))
    # 4 s at 10 fps, looped: the face crosses for 2 s, then the hall is empty (the track ends: a person record)
    clip = write_clip(tmp_path / "hall.mp4", [Walker(face, start=0, end=20, x=60, y=100, dx=15)], frames=40, fps=10)
    port = free_port(range(18300, 18400))
    config = write_config(tmp_path / "cams.yaml", redis_url(db), [
        {"id": "hall", "url": str(clip), "fps": 5, "loop": True,  # the face crosses the line (an entry) in a zone
         "zones": [{"name": "floor", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
         "lines": [{"name": "door", "points": [[0.4, 0], [0.4, 1]], "in": "right"}]},
        {"id": "gone", "url": str(tmp_path / "missing.mp4")},
    ])
    stack = services.start("stack", "up", "--config", str(config), "--port", str(port), name="stack")

    prom_port, am_port = free_port(range(18400, 18450)), free_port(range(18450, 18500))
    # the shipped rules with their `for:` durations cut to 1 s (the expressions are unchanged)
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "1s"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "maskwatch", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }))
    procs: list[subprocess.Popen] = []
    with webhook_server() as hook:
        # the shipped Alertmanager config with the test webhook and no waiting before the first notification
        am = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        am["route"].update(group_wait="0s", group_interval="1s")
        am["receivers"][0]["webhook_configs"][0]["url"] = hook.url + "/alertmanager"
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am))
        logs = (tmp_path / "prometheus.log").open("wb"), (tmp_path / "alertmanager.log").open("wb")
        try:
            procs.append(subprocess.Popen(
                [alertmanager_bin, f"--config.file={tmp_path / 'alertmanager.yml'}",
                 f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                 "--cluster.listen-address="], stdout=logs[1], stderr=subprocess.STDOUT))
            procs.append(subprocess.Popen(
                [prometheus_bin, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=logs[0], stderr=subprocess.STDOUT))
            monitoring = Monitoring(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", hook)
            wait_for(lambda: _ready(monitoring.prometheus) and _ready(monitoring.alertmanager), 60,
                     "Prometheus and Alertmanager to be ready")
            yield monitoring
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for log in logs:
                log.close()
            services.extra_pids.update(int(p) for p in re.findall(r"\(pid (\d+)\)", services.log(stack)))


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _value(series: list[dict]) -> float:
    return float(series[0]["value"][1])


def test_prometheus_stores_the_stack_series_and_alerts_reach_the_webhook(monitored_stack: Monitoring) -> None:
    m = monitored_stack
    wait_for(lambda: m.query('up{job="maskwatch"} == 1'), 120, "Prometheus to scrape the dashboard")
    wait_for(lambda: m.query('maskwatch_frames_processed_total{camera="hall"} > 5'), 120,
             "processed frames of the hall camera in Prometheus")
    assert _value(m.query('maskwatch_camera_up{camera="hall"}')) == 1
    assert _value(m.query("maskwatch_redis_up")) == 1
    assert {s["metric"]["status"] for s in m.query('maskwatch_camera_status{camera="gone"} == 1')} == {"failed"}
    faces = wait_for(lambda: m.query('sum by (label) (maskwatch_faces_total{camera="hall"})'), 60,
                     "face counts of the hall camera")
    assert {s["metric"]["label"] for s in faces} <= {"with_mask", "without_mask", "mask_incorrect"}
    # stored as a time series, not just the last scrape: the counter grew over the last seconds
    wait_for(lambda: m.query('increase(maskwatch_frames_captured_total{camera="hall"}[10s]) > 0'), 30,
             "captured frames to increase over time")

    # the shipped MaskwatchCameraDown rule fires for the camera without a file; Alertmanager posts it
    firing = wait_for(lambda: [a for a in m.query('ALERTS{alertstate="firing"}')
                               if a["metric"]["alertname"] == "MaskwatchCameraDown"], 60, "the camera-down alert")
    assert {a["metric"]["camera"] for a in firing} == {"gone"}
    wait_for(lambda: _posted(m.hook, "MaskwatchCameraDown"), 60, "Alertmanager to call the webhook")
    alert = next(a for body in m.hook.wait_for(1) for a in body["alerts"]
                 if a["labels"]["alertname"] == "MaskwatchCameraDown")
    assert alert["status"] == "firing" and alert["labels"]["camera"] == "gone"
    assert alert["labels"]["severity"] == "warning" and alert["annotations"]["summary"] == "camera gone sends no frames"
    assert not [a for a in m.query('ALERTS{alertname="MaskwatchRedisUnreachable"}')]  # Redis is fine
    # the recorder of `stack up` writes the history and its figures reach Prometheus through the dashboard
    wait_for(lambda: m.query("maskwatch_recorder_writing == 1"), 60, "the recorder's figures in Prometheus")
    wait_for(lambda: m.query("maskwatch_recorder_lag_entries == 0"), 60, "the recorder to keep up")

    # every query of every Grafana panel returns series (the camera variable at "All")
    wait_for(lambda: m.query("maskwatch_people_total"), 90, "a person record counted")
    deadline = time.monotonic() + 40
    while (missing := _empty_panels(m)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, f"Grafana panels without series: {missing}"


def _posted(hook: WebhookServer, alertname: str) -> bool:
    return any(a["labels"]["alertname"] == alertname for body in hook.wait_for(1, 0) for a in body["alerts"])


def _empty_panels(m: Monitoring) -> list[str]:
    """Titles (and queries) of the dashboard panels whose query returns nothing right now."""
    dashboard = json.loads(DASHBOARD.read_text())
    missing = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            # what Grafana sends with camera=All and a 1 s scrape interval
            expr = target["expr"].replace("$camera", ".+").replace("$__rate_interval", "10s")
            if not m.query(expr):
                missing.append(f"{panel['title']}: {expr}")
    return missing

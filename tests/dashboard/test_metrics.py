"""/metrics of a real dashboard process: parses with prometheus-client and moves when frames flow."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from shared.schemas import PersonRecord
from tests.dashboard.conftest import (
    REPO,
    Dashboard,
    frame_result,
    publish,
    register_camera,
    start_dashboard,
    stop_process,
)


@pytest.fixture(scope="module")
def server(tiny_store, redis_url_9: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard on Redis database 9."""
    dash = start_dashboard(tiny_store.root, redis_url_9, tmp_path_factory.mktemp("metrics") / "dashboard.log")
    yield dash
    stop_process(dash.process)


def scrape(server: Dashboard) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one /metrics scrape, parsed by prometheus-client."""
    with server.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def wait_for(server: Dashboard, name: str, labels: dict, value: float, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if samples.get((name, tuple(sorted(labels.items())))) == value or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_metrics_move_when_frames_flow(server: Dashboard, redis_url_9: str) -> None:
    client = redis.Redis.from_url(redis_url_9)
    register_camera(client, "entrance", frames_captured=0)
    before = scrape(server)
    assert before[("maskwatch_redis_up", ())] == 1
    assert before[("maskwatch_camera_up", (("camera", "entrance"),))] == 1
    assert before[("maskwatch_frames_captured_total", (("camera", "entrance"),))] == 0
    assert ("maskwatch_faces_total", (("camera", "entrance"), ("label", "with_mask"))) not in before

    now = time.time()
    for i in range(10):  # what capture and detector do for 10 frames
        client.hincrby(keys.camera_state("entrance"), "frames_captured", 1)
        client.hincrby(keys.camera_state("entrance"), "frames_processed", 1)
        labels = ["with_mask", "without_mask"] if i < 5 else ["without_mask"]
        publish(client, frame_result("entrance", i, labels, captured_at=now - 10 + i, latency=0.2))
    client.hincrby(keys.camera_state("entrance"), "frames_dropped", 2)
    client.xadd(keys.RESULTS_STREAM, {"data": PersonRecord(
        camera="entrance", track_id=1, label="without_mask", first_seen=now - 9, last_seen=now - 1, frames=9,
        best_box=[0, 0, 9, 9]).to_json()})

    cam = (("camera", "entrance"),)
    after = wait_for(server, "maskwatch_people_total", {"camera": "entrance", "label": "without_mask"}, 1)
    assert after[("maskwatch_frames_captured_total", cam)] == 10
    assert after[("maskwatch_frames_processed_total", cam)] == 10
    assert after[("maskwatch_frames_dropped_total", cam)] == 2
    assert after[("maskwatch_faces_total", (*cam, ("label", "with_mask")))] == 5
    assert after[("maskwatch_faces_total", (*cam, ("label", "without_mask")))] == 10
    assert after[("maskwatch_people_total", (*cam, ("label", "without_mask")))] == 1
    assert after[("maskwatch_compliance_ratio", (*cam, ("window", "1m")))] == pytest.approx(5 / 15)
    assert after[("maskwatch_unmasked_ratio", (*cam, ("window", "1m")))] == pytest.approx(10 / 15)
    assert after[("maskwatch_detector_latency_seconds_count", cam)] == 10
    assert after[("maskwatch_detector_latency_seconds_bucket", (*cam, ("le", "0.1")))] == 0
    assert after[("maskwatch_detector_latency_seconds_bucket", (*cam, ("le", "0.25")))] == 10
    assert after[("maskwatch_detector_latency_seconds_sum", cam)] == pytest.approx(2.0, abs=0.01)
    assert after[("maskwatch_model_info", (*cam, ("version", "tiny-test+retinaface-stock")))] == 1
    assert after[("maskwatch_camera_status", (*cam, ("status", "live")))] == 1


def test_camera_down_when_failed_or_stale(server: Dashboard, redis_url_9: str) -> None:
    client = redis.Redis.from_url(redis_url_9)
    register_camera(client, "broken", status="failed")
    register_camera(client, "frozen")
    client.hset(keys.camera_state("frozen"), "last_frame_time", time.time() - 120)
    samples = scrape(server)
    assert samples[("maskwatch_camera_up", (("camera", "broken"),))] == 0
    assert samples[("maskwatch_camera_status", (("camera", "broken"), ("status", "failed")))] == 1
    assert samples[("maskwatch_camera_up", (("camera", "frozen"),))] == 0


def test_prometheus_rules_use_metrics_the_dashboard_exports(server: Dashboard, redis_url_9: str) -> None:
    import re

    import yaml

    deploy = REPO / "deploy" / "prometheus"
    config = yaml.safe_load((deploy / "prometheus.yml").read_text())
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    rules = yaml.safe_load((deploy / "alerts.yml").read_text())["groups"][0]["rules"]
    assert any("without_mask" in rule["expr"] for rule in rules)
    client = redis.Redis.from_url(redis_url_9)
    register_camera(client, "porch")
    publish(client, frame_result("porch", 1, ["without_mask"]))
    wait_for(server, "maskwatch_faces_total", {"camera": "porch", "label": "without_mask"}, 1)
    with server.client() as http:
        exported = {f.name for f in text_string_to_metric_families(http.get("/metrics").text)}
    exported |= {f"{name}_total" for name in exported} | {f"{name}_bucket" for name in exported}
    for rule in rules:
        for name in re.findall(r"\bmaskwatch_[a-z_]+", rule["expr"]):
            assert name in exported, (rule["alert"], name)

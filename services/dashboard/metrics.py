"""Prometheus metrics computed from Redis at scrape time, so every dashboard replica reports the same."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from services.dashboard import cameras, queries, stats
from shared import keys
from shared.recorder_health import read_recorders
from shared.schemas import CameraStatus
from shared.streams import decode_str

STATE_COUNTERS: dict[str, str] = {
    "frames_captured": "Frames read from the camera by the capture service.",
    "frames_dropped": "Frames captured but never answered: replaced before publishing, lost to a Redis outage, "
                      "or gone from the stream before a worker answered them.",
    "frames_expired": "Of the dropped frames, those trimmed from the stream before a worker answered them "
                      "(workers too slow or dead for longer than the stream holds).",
    "frames_processed": "Frames the detector classified.",
    "frames_skipped": "Frames the detector skipped because they were too old.",
    "frames_unchanged": "Of the processed frames, those without motion, answered without the face detector.",
}


class RedisCollector(Collector):
    """Reads camera state, totals and rolling buckets from Redis on each scrape."""

    def __init__(self, client: redis.Redis, configured: Callable[[], Iterable[str]] = tuple,
                 stale_after: float = 15.0) -> None:
        self.client, self.configured, self.stale_after = client, configured, stale_after

    def collect(self):  # noqa: D102 - prometheus-client interface
        up = GaugeMetricFamily("maskwatch_redis_up", "1 when the dashboard could read Redis for this scrape.")
        try:
            families = self._families()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list:
        now = time.time()
        ids = cameras.camera_ids(self.configured(), self.client.smembers(keys.CAMERAS_SET))
        pipe = self.client.pipeline(transaction=False)
        for cam in ids:
            pipe.hgetall(keys.camera_state(cam))
            pipe.hgetall(keys.stats_totals(cam))
            pipe.get(keys.zone_occupancy(cam))
            for window in (stats.Window.MINUTE, stats.Window.HOUR):
                for _, key in stats.window_keys(cam, window, now):
                    pipe.hgetall(key)
        replies = iter(pipe.execute())

        state_counters = {name: CounterMetricFamily(f"maskwatch_{name}", doc, labels=["camera"])
                          for name, doc in STATE_COUNTERS.items()}
        camera_up = GaugeMetricFamily("maskwatch_camera_up", "1 when the camera is live and sent a frame "
                                      "recently.", labels=["camera"])
        status = GaugeMetricFamily("maskwatch_camera_status", "1 for the camera's current capture status.",
                                   labels=["camera", "status"])
        faces = CounterMetricFamily("maskwatch_faces", "Faces classified, per label (one per face per frame).",
                                    labels=["camera", "label"])
        people = CounterMetricFamily("maskwatch_people", "Tracked people, per final label.",
                                     labels=["camera", "label"])
        static = CounterMetricFamily("maskwatch_static_faces", "Tracks of static faces (posters, screens), never "
                                     "counted as people.", labels=["camera"])
        crossings = CounterMetricFamily("maskwatch_line_crossings", "People crossing a counting line, per direction "
                                        "(in: entry, out: exit) and voted label.",
                                        labels=["camera", "line", "direction", "label"])
        zone_people = CounterMetricFamily("maskwatch_zone_people", "Tracked people seen in a zone, per label.",
                                          labels=["camera", "zone", "label"])
        occupancy = GaugeMetricFamily("maskwatch_zone_occupancy", "People in a zone now (static faces left out).",
                                      labels=["camera", "zone"])
        compliance = GaugeMetricFamily("maskwatch_compliance_ratio", "Share of faces wearing a mask "
                                       "correctly over a rolling window.", labels=["camera", "window"])
        unmasked = GaugeMetricFamily("maskwatch_unmasked_ratio", "Share of faces without a mask over a "
                                     "rolling window.", labels=["camera", "window"])
        latency = HistogramMetricFamily("maskwatch_detector_latency_seconds", "Seconds from frame capture to "
                                        "its result.", labels=["camera"])
        model = InfoMetricFamily("maskwatch_model", "Model version of the camera's latest result.",
                                 labels=["camera"])

        for cam in ids:
            state = cameras.parse_state(cam, next(replies), now, self.stale_after)
            totals = {decode_str(k): decode_str(v) for k, v in next(replies).items()}
            present = queries.occupancy_of(next(replies))
            for name, family in state_counters.items():
                family.add_metric([cam], state.counters[name])
            camera_up.add_metric([cam], 1 if state.up else 0)
            for name in CameraStatus:
                status.add_metric([cam, name], 1 if state.status == name else 0)
            for field_name, value in totals.items():
                kind, _, label = field_name.partition(":")
                if kind == "faces":
                    faces.add_metric([cam, label], float(value))
                elif kind == "people":
                    people.add_metric([cam, label], float(value))
            static.add_metric([cam], float(totals.get("people_static", 0)))
            numbers = {k: int(float(v)) for k, v in totals.items() if k.startswith(("line:", "zone:"))}
            for line, directions in stats.line_counts(numbers).items():
                for direction, labels in directions.items():
                    for label, n in labels.items():
                        crossings.add_metric([cam, line, direction, label], float(n))
            for zone, labels in stats.zone_counts(numbers).items():
                for label, n in labels.items():
                    zone_people.add_metric([cam, zone, label], float(n))
            for zone, n in present.items():
                occupancy.add_metric([cam, zone], float(n))
            for window in (stats.Window.MINUTE, stats.Window.HOUR):
                keyed = stats.window_keys(cam, window, now)
                summary = stats.summarize(window, [(start, next(replies)) for start, _ in keyed])
                total = sum(summary.faces.values())
                if total:
                    compliance.add_metric([cam, window], summary.compliance or 0.0)
                    unmasked.add_metric([cam, window], summary.faces.get("without_mask", 0) / total)
            latency.add_metric([cam], _latency_buckets(totals), float(totals.get("latency_sum", 0.0)))
            if "model_version" in totals:
                model.add_metric([cam], {"version": totals["model_version"]})
        return [*state_counters.values(), camera_up, status, faces, people, static, crossings, zone_people, occupancy,
                compliance, unmasked, latency, model, *self._recorder_families(now)]

    def _recorder_families(self, now: float) -> list:
        """The history recorders' figures (shared/recorder_health.py), one series per live recorder process."""
        rows = CounterMetricFamily("maskwatch_recorder_rows", "Rows the recorder wrote to the history database, per "
                                   "kind (people, crossings, alerts).", labels=["recorder", "kind"])
        errors = CounterMetricFamily("maskwatch_recorder_errors", "Errors of the history database or Redis the "
                                     "recorder met, each followed by a retry.", labels=["recorder", "source"])
        writing = GaugeMetricFamily("maskwatch_recorder_writing", "1 for the recorder holding the writer lease "
                                    "(the others stand by).", labels=["recorder"])
        lag = GaugeMetricFamily("maskwatch_recorder_lag_entries", "Results-stream entries after the recorder's "
                                "position: read from Redis but not yet written to the database.", labels=["recorder"])
        last_write = GaugeMetricFamily("maskwatch_recorder_last_write_timestamp_seconds", "Unix time of the "
                                       "recorder's last committed batch.", labels=["recorder"])
        for name, figures in read_recorders(self.client, now).items():
            for kind, n in figures.rows.items():
                rows.add_metric([name, kind], n)
            for source, n in figures.errors.items():
                errors.add_metric([name, source], n)
            writing.add_metric([name], 1 if figures.writing else 0)
            if figures.lag is not None:
                lag.add_metric([name], figures.lag)
            if figures.last_write is not None:
                last_write.add_metric([name], figures.last_write)
        return [rows, errors, writing, lag, last_write]


def _latency_buckets(totals: dict[str, str]) -> list[tuple[str, float]]:
    running, buckets = 0.0, []
    for bound in stats.LATENCY_BUCKETS:
        running += float(totals.get(f"latency:{bound:g}", 0))
        buckets.append((f"{bound:g}", running))
    running += float(totals.get("latency:+Inf", 0))
    buckets.append(("+Inf", running))
    return buckets


def build_registry(client: redis.Redis, configured: Callable[[], Iterable[str]] = tuple,
                   stale_after: float = 15.0) -> CollectorRegistry:
    """A registry holding only the Redis-backed maskwatch metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client, configured, stale_after))
    return registry


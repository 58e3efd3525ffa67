"""History at a busy site: 10 cameras x 3,000 people/camera/day x 90 days (2.7 M person rows), SQLite and PostgreSQL.

    nice -n 10 python benchmarks/history.py [--backend sqlite postgresql] [--days 90] [--cameras 10] [--per-day 3000]
        [--redis redis://127.0.0.1:6379/12] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Per back end: bulk-loads the rows the recorder would have written (people, crossings of one line, alerts and the
hourly/daily counts; COPY on PostgreSQL, one executemany transaction on SQLite), then measures
- recorder throughput: the real RecorderService catching up a backlog of person records (with 96 px face
  thumbnails) in the Redis results stream, alone and mixed with frame results (4 frames per person);
- p95 (and p50, max) of history API requests through the FastAPI app (in process: no network) for a month of
  one camera and a week of all cameras;
- database size per million person rows, without thumbnails (the full load) and with (a 100 k sample);
and writes benchmarks/results/history.json. Redis database --redis is flushed; PostgreSQL gets a fresh
database history_bench_<pid>, dropped at the end. Takes several minutes; run it niced.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import redis
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import URL, make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from services.recorder.service import RecorderService  # noqa: E402
from shared import keys  # noqa: E402
from shared.history.config import HistoryConfig  # noqa: E402
from shared.history.database import create_history_engine  # noqa: E402
from shared.history.migrate import upgrade  # noqa: E402
from shared.history.schema import people, thumbnails  # noqa: E402
from shared.schemas import FrameResult, PersonRecord  # noqa: E402

LABELS = ("with_mask", "without_mask", "mask_incorrect")
WEIGHTS = (0.7, 0.2, 0.1)
DAY = 86400
UTC = ZoneInfo("UTC")


def face_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """Distinct 96 px JPEG faces (noise over a face-like gradient), as the tracker's thumbnails are."""
    rng = np.random.default_rng(seed)
    base = np.zeros((96, 80, 3), np.uint8)
    cv2.ellipse(base, (40, 48), (30, 40), 0, 0, 360, (120, 150, 190), -1)
    out = []
    for _ in range(count):
        image = np.clip(base.astype(int) + rng.integers(-25, 25, base.shape), 0, 255).astype(np.uint8)
        out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return out


def person_rows(cameras: int, per_day: int, days: int, end: float, seed: int = 1):
    """Tuples (camera, track_id, label, first_seen, last_seen, frames, static) in time order per day."""
    rng = random.Random(seed)
    start = end - days * DAY
    track = 0
    for day in range(days):
        midnight = start + day * DAY
        for cam in range(cameras):
            times = sorted(midnight + rng.uniform(7 * 3600, 21 * 3600) for _ in range(per_day))
            labels = rng.choices(LABELS, WEIGHTS, k=per_day)
            for t, label in zip(times, labels):
                track += 1
                yield (f"cam{cam:02d}", track, label, t, t + rng.uniform(1, 20), rng.randint(3, 80),
                       rng.random() < 0.01)


def bulk_load(engine: Engine, args: argparse.Namespace, end: float) -> dict:
    """People, crossings (one line on cam00), alerts (30 per camera per day) and counts, as fast as the back end
    takes them; the people indexes are built after the load."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for index in people.indexes:  # the schema's (migration 0003's), built again after the load
            index.drop(conn)
    rows = person_rows(args.cameras, args.per_day, args.days, end)
    n = 0
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        box, zones = "[10, 10, 60, 70]", "[]"
        if engine.dialect.name == "postgresql":
            crossings_rows, alert_rows = [], []
            with cur.copy("COPY people (camera, track_id, label, first_seen, last_seen, frames, best_box, zones, "
                          "static) FROM STDIN") as copy:
                for camera, track, label, first, last, frames, static in rows:
                    copy.write_row((camera, track, label, first, last, frames, box, zones, static))
                    n += 1
                    if camera == "cam00" and not static:
                        crossings_rows.append(("cam00", "entrance", "in" if track % 2 else "out", track, label, first))
                    if track % 100 == 0:
                        alert_rows.append((f"bench-{track}", camera, "person", first, '{"kind": "person"}'))
            with cur.copy("COPY crossings (camera, line, direction, track_id, label, time) FROM STDIN") as copy:
                for row in crossings_rows:
                    copy.write_row(row)
            with cur.copy("COPY alerts (uid, camera, kind, time, event) FROM STDIN") as copy:
                for row in alert_rows:
                    copy.write_row(row)
        else:
            cur.execute("BEGIN")
            crossings_rows, alert_rows, chunk = [], [], []
            for camera, track, label, first, last, frames, static in rows:
                chunk.append((camera, track, label, first, last, frames, box, zones, int(static)))
                if camera == "cam00" and not static:
                    crossings_rows.append(("cam00", "entrance", "in" if track % 2 else "out", track, label, first))
                if track % 100 == 0:
                    alert_rows.append((f"bench-{track}", camera, "person", first, '{"kind": "person"}'))
                if len(chunk) >= 50_000:
                    cur.executemany("INSERT INTO people (camera, track_id, label, first_seen, last_seen, frames, "
                                    "best_box, zones, static) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", chunk)
                    n += len(chunk)
                    chunk = []
            cur.executemany("INSERT INTO people (camera, track_id, label, first_seen, last_seen, frames, best_box, "
                            "zones, static) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", chunk)
            n += len(chunk)
            cur.executemany("INSERT INTO crossings (camera, line, direction, track_id, label, time) "
                            "VALUES (?, ?, ?, ?, ?, ?)", crossings_rows)
            cur.executemany("INSERT INTO alerts (uid, camera, kind, time, event) VALUES (?, ?, ?, ?, ?)", alert_rows)
            cur.execute("COMMIT")
        raw.commit()
    finally:
        raw.close()
    loaded = time.perf_counter() - t0
    floor = "floor" if engine.dialect.name == "postgresql" else ""
    bucket = (lambda s: f"CAST({floor}(first_seen / {s}) * {s} AS BIGINT)") if floor else \
        (lambda s: f"CAST(first_seen / {s} AS INTEGER) * {s}")
    cbucket = (lambda s: f"CAST(floor(time / {s}) * {s} AS BIGINT)") if floor else \
        (lambda s: f"CAST(time / {s} AS INTEGER) * {s}")
    with engine.begin() as conn:
        for index in people.indexes:
            index.create(conn)
        for res, size in (("h", 3600), ("d", DAY)):
            conn.execute(text(f"INSERT INTO counts (resolution, camera, kind, line, start, label, n) "
                              f"SELECT '{res}', camera, 'people', '', {bucket(size)}, label, count(*) FROM people "
                              f"WHERE NOT static GROUP BY camera, {bucket(size)}, label"))
            conn.execute(text(f"INSERT INTO counts (resolution, camera, kind, line, start, label, n) "
                              f"SELECT '{res}', camera, direction, line, {cbucket(size)}, label, count(*) "
                              f"FROM crossings GROUP BY camera, direction, line, {cbucket(size)}, label"))
        position = f"{int(end * 1000)}-0"
        conn.execute(text("INSERT INTO recorder_state (stream, position, owner, lease_until, updated_at) "
                          "VALUES ('results', :p, NULL, 0, :t)"), {"p": position, "t": end})
    if engine.dialect.name == "postgresql":  # the visibility map autovacuum keeps: index-only scans
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return {"people_rows": n, "load_s": round(loaded, 1), "index_and_counts_s": round(time.perf_counter() - t0 -
                                                                                       loaded, 1)}


def database_bytes(engine: Engine, url: URL) -> int:
    """Bytes of the whole database (SQLite: the file after a WAL checkpoint)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    return Path(url.database).stat().st_size


def add_thumbnails(engine: Engine, count: int) -> None:
    """Face JPEGs for the newest `count` people (what 30 days of thumbnails would be, sampled)."""
    jpegs = face_jpegs(200)
    with engine.begin() as conn:
        ids = conn.execute(select(people.c.id, people.c.first_seen)
                           .outerjoin(thumbnails, people.c.id == thumbnails.c.person_id)
                           .where(thumbnails.c.person_id.is_(None)).order_by(people.c.first_seen.desc())
                           .limit(count)).all()
        for start in range(0, len(ids), 10_000):
            conn.execute(text("INSERT INTO thumbnails (person_id, first_seen, jpeg) VALUES (:p, :f, :j)"),
                         [{"p": pid, "f": first, "j": jpegs[(pid * 7) % len(jpegs)] + pid.to_bytes(8, "little")}
                          for pid, first in ids[start:start + 10_000]])


def recorder_throughput(engine: Engine, url: URL, client: redis.Redis, people_count: int, frames_per_person: int,
                        end: float) -> dict:
    """Person records/s of the real recorder catching up a backlog (frame results interleaved)."""
    client.delete(keys.RESULTS_STREAM)
    before = client.xadd(keys.RESULTS_STREAM, {"data": FrameResult(source="cam03", camera="cam03", width=1280,
                                                                   height=720).to_json()}).decode()
    jpegs = [base64.b64encode(j).decode() for j in face_jpegs(100, seed=5)]
    pipe = client.pipeline(transaction=False)
    ids: list[bytes] = []
    for k in range(people_count):
        t = end + k * 0.01
        for f in range(frames_per_person):
            pipe.xadd(keys.RESULTS_STREAM, {"data": FrameResult(source="cam03", camera="cam03", frame=k * 10 + f,
                                                                width=1280, height=720, captured_at=t).to_json()})
        pipe.xadd(keys.RESULTS_STREAM, {"data": PersonRecord(
            camera=f"cam{k % 10:02d}", track_id=10_000_000 + k, label=LABELS[k % 3], first_seen=t, last_seen=t + 5,
            frames=30, best_box=[100, 80, 160, 150], thumbnail=jpegs[k % len(jpegs)]).to_json()})
        if len(pipe) >= 2000:
            ids += pipe.execute()
    ids += pipe.execute()
    last_id = ids[-1].decode()
    with engine.begin() as conn:  # start right before the backlog
        conn.execute(text("UPDATE recorder_state SET position = :p, owner = NULL, lease_until = 0"), {"p": before})
    service = RecorderService(client, create_history_engine(url, writer=True), url,
                              HistoryConfig(prune_interval_s=10**9), "bench")
    service.prepare()
    t0 = time.perf_counter()
    while service.cursor != last_id:
        service.step(block_ms=1)
    elapsed = time.perf_counter() - t0
    service.engine.dispose()
    return {"person_records": people_count, "frames_per_person": frames_per_person, "seconds": round(elapsed, 2),
            "person_records_per_s": round(people_count / elapsed, 1),
            "entries_per_s": round(people_count * (1 + frames_per_person) / elapsed, 1)}


def api_latency(url: URL, end: float, repeats: int) -> dict:
    """p50/p95/max of history API requests through the app, for a month of one camera and a week of all."""
    from fastapi.testclient import TestClient

    from services.dashboard.app import create_app
    from services.dashboard.settings import DashboardSettings

    month = {"from": str(end - 30 * DAY), "to": str(end)}
    week = {"from": str(end - 7 * DAY), "to": str(end)}
    cases = {
        "counts, day, month of one camera": ("/api/v1/history/counts", {**month, "period": "day", "camera": "cam03"}),
        "counts, hour, month of one camera": ("/api/v1/history/counts", {**month, "period": "hour", "camera": "cam03"}),
        "counts, hour, week of all cameras": ("/api/v1/history/counts", {**week, "period": "hour"}),
        "counts, day, week of all cameras": ("/api/v1/history/counts", {**week, "period": "day"}),
        "people page, month of one camera, unmasked": ("/api/v1/history/people", {**month, "camera": "cam03",
                                                                                  "label": "without_mask"}),
        "people page, week of all cameras": ("/api/v1/history/people", week),
        "people page 100, week of all cameras": ("/api/v1/history/people", {**week, "offset": 5000}),
        "alerts, month of one camera": ("/api/v1/history/alerts", {**month, "camera": "cam03"}),
        "entries, day, month of one camera": ("/api/v1/history/entries", {**month, "camera": "cam00"}),
        "report, month of one camera": ("/api/v1/history/report", {"span": "month", "date": str(end - DAY),
                                                                   "camera": "cam03"}),
        "report, week of all cameras": ("/api/v1/history/report", {"span": "week", "date": str(end - DAY)}),
        "counts.csv, hour, week of all cameras": ("/api/v1/history/counts.csv", {**week, "period": "hour"}),
    }
    settings = DashboardSettings(history=HistoryConfig(database_url=url.render_as_string(hide_password=False)))
    out = {}
    with TestClient(create_app(settings)) as http:
        for name, (path, params) in cases.items():
            assert http.get(path, params=params).status_code == 200, name  # warm: connections, caches
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                response = http.get(path, params=params)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (name, response.text[:200])
            times.sort()
            out[name] = {"p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1), "max_ms": round(times[-1], 1)}
            print(f"  {name}: p95 {out[name]['p95_ms']} ms", flush=True)
    return out


def run_backend(backend: str, args: argparse.Namespace, client: redis.Redis) -> dict:
    end = float(int(time.time()) // DAY * DAY)
    folder = Path(tempfile.mkdtemp(prefix="maskwatch-history-bench-"))
    if backend == "sqlite":
        url = URL.create("sqlite", database=str(folder / "history.sqlite3"))
        cleanup = None
    else:
        import psycopg

        admin = make_url(args.pg)
        name = f"history_bench_{os.getpid()}"
        with psycopg.connect(host=admin.host, port=admin.port or 5432, user=admin.username, dbname=admin.database,
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.set(drivername="postgresql+psycopg", database=name)

        def cleanup() -> None:
            with psycopg.connect(host=admin.host, port=admin.port or 5432, user=admin.username, dbname=admin.database,
                                 autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine = create_history_engine(url, writer=True)
    load_before = round(os.getloadavg()[0], 1)
    try:
        upgrade(engine)
        print(f"{backend}: loading {args.cameras * args.per_day * args.days:,} people ...", flush=True)
        load = bulk_load(engine, args, end)
        print(f"{backend}: {load}", flush=True)
        size_plain = database_bytes(engine, url)
        print(f"{backend}: API latency ...", flush=True)
        latency = api_latency(url, end, args.repeats)
        print(f"{backend}: recorder throughput ...", flush=True)
        throughput = [recorder_throughput(engine, url, client, args.backlog, fpp, end) for fpp in (0, 4)]
        print(f"{backend}: {throughput}", flush=True)
        size_before = database_bytes(engine, url)
        add_thumbnails(engine, args.thumbnail_sample)
        size_thumbs = database_bytes(engine, url)
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(people)).scalar()
        per_thumbnail = (size_thumbs - size_before) / args.thumbnail_sample
        without = size_plain / rows * 1e6
        return {
            "load": load, "person_rows": rows, "machine_load_average_1m_before": load_before,
            "machine_load_average_1m_after": round(os.getloadavg()[0], 1),
            "api_latency": latency,
            "recorder": throughput,
            "size": {"database_bytes": size_plain, "thumbnail_sample": args.thumbnail_sample,
                     "bytes_per_thumbnail_row": round(per_thumbnail, 1),
                     "mb_per_million_people_without_thumbnails": round(without / 2**20, 1),
                     "mb_per_million_people_with_thumbnails": round((without + per_thumbnail * 1e6) / 2**20, 1)},
        }
    finally:
        engine.dispose()
        if cleanup:
            cleanup()
        for path in folder.glob("*"):
            path.unlink()
        folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=3000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backlog", type=int, default=6000, help="person records the recorder catches up")
    parser.add_argument("--repeats", type=int, default=30, help="requests per API case")
    parser.add_argument("--thumbnail-sample", type=int, default=100_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "history.json")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis)
    client.flushdb()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    report = {"benchmark": "history", "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
              "niceness": os.nice(0), "site": {"cameras": args.cameras, "people_per_camera_per_day": args.per_day,
                                               "days": args.days},
              "targets": {"recorder_person_records_per_s": 200, "api_p95_ms": 300}, "backends": {}}
    try:
        for backend in args.backend:
            report["backends"][backend] = run_backend(backend, args, client)
    finally:
        client.flushdb()
    write_report(args.out, report)


if __name__ == "__main__":
    main()

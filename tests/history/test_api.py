"""The history API over a filled database on SQLite and PostgreSQL: counts per period, people with thumbnails,
alerts, entries, the report, CSV of each, API key, bad parameters and an unavailable database."""

from __future__ import annotations

import base64
import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import URL

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from services.recorder.writer import HistoryWriter
from shared.history.config import HistoryConfig
from shared.history.database import create_history_engine
from shared.history.migrate import head_revision, upgrade
from shared.schemas import AlertRecord, LineCrossing, PersonRecord
from tests.conftest import TEST_REDIS_PORT
from tests.history.conftest import (
    LABELS,
    PG_PORT,
    create_pg_database,
    drop_pg_database,
    pg_url,
    thumbnail,
    url_text,
)

ZONE = ZoneInfo("Europe/Paris")
DAY0 = datetime(2026, 11, 2, tzinfo=ZONE).timestamp()  # a Monday, local midnight
DAYS, CAMERAS = 14, ("door", "hall", "back")
KEY = "history-test-key"


def dataset() -> list:
    """Two weeks of people 08:00-17:59 on three cameras (every 13th static), door crossings and some alerts."""
    out, track = [], 0
    for day in range(DAYS):
        for ci, camera in enumerate(CAMERAS):
            for hour in range(8, 18):
                for k in range((day + hour + ci) % 4 + 1):
                    track += 1
                    when = DAY0 + day * 86400 + hour * 3600 + k * 600 + 17
                    label = LABELS[(track * 7 + hour) % 3] if hour != 9 else "without_mask"
                    out.append(PersonRecord(camera=camera, track_id=track, label=label, first_seen=when,
                                            last_seen=when + 4, frames=12, best_box=[5, 5, 50, 60],
                                            thumbnail=thumbnail(track), static=track % 13 == 0))
                    if camera == "door":
                        out.append(LineCrossing(camera=camera, line="entrance", direction="in" if k % 2 == 0 else "out",
                                                track_id=track, label=label, time=when + 2))
                if hour == 9:
                    out.append(AlertRecord(camera=camera, kind="person", time=DAY0 + day * 86400 + hour * 3600 + 30,
                                           event={"id": f"a-{day}-{camera}", "kind": "person", "camera": camera}))
    return out


DATA = dataset()
PEOPLE = [m for m in DATA if isinstance(m, PersonRecord)]
COUNTED = [p for p in PEOPLE if not p.static]


def local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, ZONE)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    if request.param == "sqlite":
        url = URL.create("sqlite", database=str(tmp_path_factory.mktemp("api") / "history.sqlite3"))
    else:
        name = create_pg_database()
        url = pg_url(PG_PORT, name)
    engine = create_history_engine(url, writer=True)
    upgrade(engine)
    writer = HistoryWriter(engine, "test", 10.0, ZONE)
    entries = [(f"{1000 + k}-0", m) for k, m in enumerate(DATA)]
    for start in range(0, len(entries), 500):
        batch = entries[start:start + 500]
        writer.write(batch, batch[-1][0])
    engine.dispose()
    yield url
    if request.param == "postgresql":
        drop_pg_database(url.database)


@pytest.fixture(scope="module")
def client(filled: URL) -> Iterator[TestClient]:
    settings = DashboardSettings(redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/12", api_key=KEY,
                                 history=HistoryConfig(database_url=url_text(filled), timezone="Europe/Paris"))
    with TestClient(create_app(settings), headers={"X-API-Key": KEY}) as http:
        yield http


def day_range(first: int, days: int) -> dict:
    return {"from": datetime.fromtimestamp(DAY0 + first * 86400, ZONE).date().isoformat(),
            "to": datetime.fromtimestamp(DAY0 + (first + days) * 86400, ZONE).date().isoformat()}


def test_counts_per_day_week_month_and_hour_match_the_people(client: TestClient) -> None:
    r = client.get("/api/v1/history/counts", params={"period": "day", **day_range(0, DAYS), "camera": "door"})
    assert r.status_code == 200, r.text
    body = r.json()
    want = Counter((local(p.first_seen).date().isoformat(), p.label) for p in COUNTED if p.camera == "door")
    assert [p["name"] for p in body["series"]] == [local(DAY0 + d * 86400).date().isoformat() for d in range(DAYS)]
    for point in body["series"]:
        assert point["counts"] == {label: want[(point["name"], label)] for label in LABELS}
        assert point["total"] == sum(point["counts"].values())
        assert point["masked_share"] == round(point["counts"]["with_mask"] / point["total"], 4)
        assert point["end"] - point["start"] == 86400
    assert body["totals"]["total"] == sum(1 for p in COUNTED if p.camera == "door")
    assert body["by_camera"] == [{"camera": "door", **body["totals"]}] and body["timezone"] == "Europe/Paris"
    # weeks (Monday to Sunday) and the month sum the same days; every camera when none is named
    week = client.get("/api/v1/history/counts", params={"period": "week", **day_range(0, DAYS)}).json()
    assert [p["name"] for p in week["series"]] == ["2026-W45", "2026-W46"]
    assert [p["total"] for p in week["series"]] == [sum(1 for p in COUNTED if local(p.first_seen).day < 9),
                                                    sum(1 for p in COUNTED if local(p.first_seen).day >= 9)]
    month = client.get("/api/v1/history/counts", params={"period": "month", **day_range(0, DAYS)}).json()
    assert [(p["name"], p["total"]) for p in month["series"]] == [("2026-11", len(COUNTED))]
    assert {c["camera"] for c in month["by_camera"]} == set(CAMERAS)
    hours = client.get("/api/v1/history/counts", params={"period": "hour", **day_range(3, 1), "camera": ["hall"]})
    series = hours.json()["series"]
    assert len(series) == 24 and series[9]["name"].endswith(" 09:00")
    assert series[9]["counts"]["without_mask"] == sum(
        1 for p in COUNTED if p.camera == "hall" and local(p.first_seen).day == 5 and local(p.first_seen).hour == 9)


def test_counts_of_a_line_and_entries(client: TestClient) -> None:
    crossings = [m for m in DATA if isinstance(m, LineCrossing)]
    r = client.get("/api/v1/history/counts", params={**day_range(0, DAYS), "line": "entrance", "direction": "out"})
    assert r.json()["totals"]["total"] == sum(1 for c in crossings if c.direction == "out")
    entries = client.get("/api/v1/history/entries", params={"period": "week", **day_range(0, DAYS)}).json()
    [line] = entries["lines"]
    assert (line["camera"], line["line"]) == ("door", "entrance")
    assert line["totals"]["in_total"] == sum(1 for c in crossings if c.direction == "in")
    assert line["totals"]["in"] == {label: sum(1 for c in crossings if c.direction == "in" and c.label == label)
                                    for label in LABELS}
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/history/entries.csv",
                                                      params={"period": "week", **day_range(0, DAYS)}).text)))
    assert [int(r["in_total"]) for r in rows] == [p["in_total"] for p in line["series"]]


def test_people_pages_filters_and_thumbnails(client: TestClient) -> None:
    params = {**day_range(2, 1), "camera": "back", "label": "without_mask", "limit": 5}
    first = client.get("/api/v1/history/people", params=params).json()
    want = sorted((p for p in COUNTED if p.camera == "back" and p.label == "without_mask"
                   and local(p.first_seen).day == 4), key=lambda p: -p.first_seen)
    assert first["total"] == len(want) > 5
    assert [p["track_id"] for p in first["items"]] == [p.track_id for p in want[:5]]
    second = client.get("/api/v1/history/people", params={**params, "offset": 5}).json()
    assert [p["track_id"] for p in second["items"]] == [p.track_id for p in want[5:10]]
    person = first["items"][0]
    image = client.get(person["thumbnail_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == base64.b64decode(want[0].thumbnail)
    assert client.get("/api/v1/history/people/999999999/thumbnail.jpg").status_code == 404
    statics = client.get("/api/v1/history/people", params={**day_range(0, DAYS), "include_static": True,
                                                           "limit": 500}).json()
    assert statics["total"] == len(PEOPLE) and any(p["static"] for p in statics["items"])
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/history/people.csv", params=params).text)))
    assert [int(r["track_id"]) for r in rows] == [p.track_id for p in want]


def test_alerts_page_and_csv(client: TestClient) -> None:
    body = client.get("/api/v1/history/alerts", params={**day_range(0, DAYS), "camera": "hall", "limit": 3}).json()
    assert body["total"] == DAYS and len(body["items"]) == 3
    assert body["items"][0]["event"]["id"] == f"a-{DAYS - 1}-hall"
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/history/alerts.csv", params=day_range(0, DAYS)).text)))
    assert len(rows) == DAYS * len(CAMERAS) and rows[0]["time_iso"].endswith("+01:00")


def test_report_of_a_week(client: TestClient) -> None:
    r = client.get("/api/v1/history/report", params={"span": "week", "date": "2026-11-12"})
    assert r.status_code == 200, r.text
    report = r.json()
    week = [p for p in COUNTED if 9 <= local(p.first_seen).day < 16]
    before = [p for p in COUNTED if local(p.first_seen).day < 9]
    assert report["name"] == "2026-W46 (2026-11-09 to 2026-11-15)"
    assert report["totals"]["total"] == len(week) and report["previous"]["total"] == len(before)
    assert [p["name"] for p in report["series"]] == [f"2026-11-{d:02d}" for d in range(9, 16)]
    profile = {h["hour"]: h["total"] for h in report["hourly_profile"]}
    assert profile == {h: sum(1 for p in week if local(p.first_seen).hour == h) for h in range(24)}
    hours: dict[int, Counter] = {}
    for p in week:
        hours.setdefault(int(p.first_seen // 3600 * 3600), Counter())[p.label] += 1
    ranked = sorted(hours.items(), key=lambda kv: (-(kv[1]["without_mask"] + kv[1]["mask_incorrect"]),
                                                   kv[1]["with_mask"] / sum(kv[1].values()), kv[0]))
    assert [w["start"] for w in report["worst_hours"]] == [start for start, _ in ranked[:5]]
    assert report["alerts"]["total"] == 7 * len(CAMERAS) and report["alerts"]["by_kind"] == {"person": 21}
    assert [e["line"] for e in report["entries"]] == ["entrance"] and report["gaps"] == []
    day = client.get("/api/v1/history/report", params={"span": "day", "date": "2026-11-12", "camera": "door"}).json()
    assert len(day["series"]) == 24 and day["cameras"] == ["door"]


def test_csv_matches_the_json_and_takes_the_key_in_the_query(client: TestClient) -> None:
    params = {"period": "day", **day_range(0, 3)}
    body = client.get("/api/v1/history/counts", params=params).json()
    plain = TestClient(client.app)
    assert plain.get("/api/v1/history/counts.csv", params=params).status_code == 401
    text = plain.get("/api/v1/history/counts.csv", params={**params, "api_key": KEY}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(int(r["total"]), *(int(r[label]) for label in LABELS)) for r in rows] == \
        [(p["total"], *(p["counts"][label] for label in LABELS)) for p in body["series"]]
    assert rows[0]["period_start"] == "2026-11-02T00:00:00+01:00"
    assert plain.get("/api/v1/history/counts", params={**params, "api_key": KEY}).status_code == 401  # JSON: header


def test_status(client: TestClient, filled: URL) -> None:
    status = client.get("/api/v1/history/status").json()
    assert status["cameras"] == sorted(CAMERAS) and status["lines"] == [{"camera": "door", "line": "entrance"}]
    assert status["recorder"]["position"] == f"{1000 + len(DATA) - 1}-0"
    assert status["schema_revision"] == head_revision()
    seen = [p.first_seen for p in PEOPLE]
    assert (status["oldest"], status["newest"]) == (min(seen), max(seen))
    assert status["database"] == filled.render_as_string(hide_password=True)
    assert status["backend"] == filled.get_backend_name() and status["retention"]["keep_people_days"] == 90


@pytest.mark.parametrize(("params", "fragment"), [
    ({"label": "masked"}, "label 'masked'"),
    ({"from": "yesterday"}, "from/to"),
    ({"from": "2026-11-10", "to": "2026-11-01"}, "after"),
])
def test_bad_parameters_are_400(client: TestClient, params: dict, fragment: str) -> None:
    response = client.get("/api/v1/history/people", params=params)
    assert response.status_code == 400 and fragment in response.json()["detail"]


def test_too_many_periods_is_400(client: TestClient) -> None:
    response = client.get("/api/v1/history/counts", params={"period": "hour", "from": "2000-01-01"})
    assert response.status_code == 400 and "more than" in response.json()["detail"]


@pytest.mark.parametrize(("history", "detail"), [
    ({"database_url": "mysql://u:p4ss@db/x"}, "history database not configured: database URL 'mysql://u:***@db/x'"),
    ({"database_url": "postgresql://u:p4ss@127.0.0.1:9/x"}, "history database unavailable: connection failed"),
    ({"database_url": "sqlite:////nonexistent/folder/history.sqlite3"}, "no history database yet at /nonexistent"),
])
def test_an_unusable_database_is_503_and_the_rest_works(history: dict, detail: str) -> None:
    settings = DashboardSettings(redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/12",
                                 history=HistoryConfig(**history))
    with TestClient(create_app(settings)) as http:
        for route in ("status", "counts", "people", "report"):
            response = http.get(f"/api/v1/history/{route}")
            assert response.status_code == 503, route
            assert response.json()["detail"].startswith(detail) and "p4ss" not in response.text
        assert http.get("/api/v1/labels").status_code == 200


def test_a_database_without_schema_is_503(tmp_path) -> None:
    url = URL.create("sqlite", database=str(tmp_path / "history.sqlite3"))
    create_history_engine(url, writer=True).dispose()
    (tmp_path / "history.sqlite3").touch()
    settings = DashboardSettings(redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/12",
                                 history=HistoryConfig(database_url=url_text(url)))
    with TestClient(create_app(settings)) as http:
        for route in ("status", "counts"):
            response = http.get(f"/api/v1/history/{route}")
            assert response.status_code == 503 and "no schema yet" in response.json()["detail"]


def test_stats_csv_reads_windows_longer_than_redis_keeps_from_the_history(client: TestClient) -> None:
    import redis

    from shared import keys

    registry = redis.Redis(port=TEST_REDIS_PORT, db=12)
    registry.sadd(keys.CAMERAS_SET, "door")
    try:
        days = int((datetime.now(ZONE).timestamp() - DAY0) // 86400) + 2
        response = client.get("/api/v1/cameras/door/stats.csv", params={"window": f"{days}d"})
        assert response.status_code == 200, response.text
        rows = [r for r in csv.DictReader(io.StringIO(response.text)) if int(r["people"])]
        want = Counter(local(p.first_seen).date() for p in COUNTED if p.camera == "door")
        assert [(local(int(r["period_start"])).date(), int(r["people"])) for r in rows] == sorted(want.items())
        assert rows[0]["frames"] == "" and float(rows[0]["compliance_rate"]) == round(
            int(rows[0]["with_mask"]) / int(rows[0]["people"]), 4)
        hourly = client.get("/api/v1/cameras/door/stats.csv", params={"window": f"{days}d", "period": "1h"})
        assert hourly.status_code == 200, hourly.text
        assert sum(int(r["people"]) for r in csv.DictReader(io.StringIO(hourly.text))) == sum(want.values())
        assert client.get("/api/v1/cameras/door/stats.csv", params={"window": f"{days}d", "period": "15m"}
                          ).status_code == 400
        assert client.get("/api/v1/cameras/door/stats.csv", params={"window": "1d"}).status_code == 200  # Redis
    finally:
        registry.srem(keys.CAMERAS_SET, "door")
        registry.close()

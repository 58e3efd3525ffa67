"""The History and Report pages in real Chromium over a history database the recorder's writer filled: the
charts are drawn from the API's counts, the people table filters by label and pages, every CSV link downloads
what the API answers, and the report prints to PDF without the page's navigation."""

from __future__ import annotations

import base64
import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
import yaml

from services.recorder.writer import HistoryWriter
from shared.history.database import create_history_engine
from shared.history.migrate import upgrade
from shared.schemas import AlertRecord, LineCrossing, PersonRecord
from tests.conftest import TEST_REDIS_PORT, flushed_redis
from tests.dashboard.conftest import REPO, Dashboard, start_dashboard, stop_process

DB = 5
OUTPUT = REPO / "test-output" / "dashboard"
LABELS = ("with_mask", "without_mask", "mask_incorrect")
HOUR = 3600
pytestmark = pytest.mark.slow


def _thumbnail(shade: int) -> str:
    face = np.full((64, 48, 3), shade, np.uint8)
    cv2.circle(face, (24, 28), 16, (200, 180, 160), -1)
    return base64.b64encode(cv2.imencode(".jpg", face)[1].tobytes()).decode()


def _messages(now: float) -> list:
    """Three days of a small site: door-a (with a counting line) and lobby, people every few minutes in the
    morning hours, crossings through door-a's line and a few alerts; yesterday and the two days before."""
    day = int(now // 86400 * 86400)
    messages: list = []
    track = 0
    for back in (1, 2, 3):
        for hour in (9, 10, 11):
            start = day - back * 86400 + hour * HOUR
            for i in range(6 + back + hour % 3):
                track += 1
                camera = "door-a" if i % 3 else "lobby"
                label = LABELS[0] if i % 4 < 2 else LABELS[1 + (i + hour) % 2]
                first = start + i * 300 + 7
                messages.append(PersonRecord(camera=camera, track_id=track, label=label, first_seen=first,
                                             last_seen=first + 6, frames=24, best_box=[10, 20, 58, 84],
                                             thumbnail=_thumbnail(40 + track % 160), zones=["queue"]))
                if camera == "door-a":
                    messages.append(LineCrossing(camera=camera, line="door", direction="in" if i % 5 else "out",
                                                 track_id=track, label=label, time=first + 3))
                if label == "without_mask" and i % 2:
                    messages.append(AlertRecord(camera=camera, kind="person", time=first + 5, event={
                        "type": "alert", "id": f"a{track}", "kind": "person", "camera": camera, "track_id": track,
                        "label": label, "time": first + 5}))
    return messages


@pytest.fixture(scope="module")
def history_site(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, int]]:
    """A dashboard over a SQLite history database holding three days of two cameras; yields it and the count
    of people recorded."""
    client = next(flushed_redis(DB))
    folder = tmp_path_factory.mktemp("history")
    url = f"sqlite:///{folder / 'history.sqlite3'}"
    config = folder / "cameras.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}",
        "cameras": [{"id": "door-a", "url": "rtsp://door-a/1", "enabled": False,
                     "lines": [{"name": "door", "points": [[0.05, 0.5], [0.95, 0.5]], "in": "down"}]},
                    {"id": "lobby", "url": "rtsp://lobby/1", "enabled": False}],
        "history": {"database_url": url, "timezone": "UTC"},
    }))
    from sqlalchemy.engine import make_url

    engine = create_history_engine(make_url(url), writer=True)
    upgrade(engine)
    messages = _messages(time.time())
    writer = HistoryWriter(engine, "test-writer", 15.0, ZoneInfo("UTC"))
    assert writer.hold().held
    entries = [(f"{1_700_000_000_000 + i}-0", message) for i, message in enumerate(messages)]
    writer.write(entries, entries[-1][0])
    writer.release()
    engine.dispose()
    server = start_dashboard(tiny_store.root, f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}", folder / "dashboard.log",
                             "--config", str(config))
    yield server, sum(isinstance(m, PersonRecord) for m in messages)
    stop_process(server.process)
    client.flushdb()
    client.close()


def _wait_loaded(page, n: int) -> None:
    page.wait_for_function("n => Number(document.body.dataset.loaded || 0) >= n", arg=n, timeout=30_000)


def _csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_history_page_charts_filters_pages_and_downloads(history_site, browser) -> None:
    server, people = history_site
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    page.goto(f"{server.url}/history?range=7d&period=day")
    _wait_loaded(page, 1)
    http = server.client()

    # the chart: one bar group per day of the range, the people the API counts, drawn on the canvas
    counts = http.get("/api/v1/history/counts", params={"period": "day", "from": _from_of(page)}).json()
    assert counts["totals"]["total"] == people
    chart = page.locator("#counts-chart")
    assert int(chart.get_attribute("data-periods")) == len(counts["series"]) == 7
    assert int(chart.get_attribute("data-total")) == people
    drawn = chart.evaluate("""c => { const chart = Chart.getChart(c);
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let ink = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
        return {datasets: chart.data.datasets.map(d => d.label), bars: chart.data.datasets.slice(0, 3)
            .map(d => d.data.reduce((a, b) => a + b, 0)), share: chart.data.datasets[3].data, ink}; }""")
    assert drawn["datasets"] == ["with mask", "without mask", "mask incorrect", "masked share"]
    assert drawn["bars"] == [counts["totals"]["counts"][label] for label in LABELS]
    assert drawn["share"] == [None if p["masked_share"] is None else round(p["masked_share"] * 1000) / 10
                              for p in counts["series"]]
    assert drawn["ink"] > 5000  # bars, axes and the share line are on the canvas
    assert page.locator("#chart-summary").text_content().startswith(f"{people} people")

    # the CSV link downloads what the API answers for the same view
    with page.expect_download() as download:
        page.click("#csv-counts")
    rows = _csv_rows(Path(download.value.path()).read_text())
    assert [int(r["total"]) for r in rows] == [p["total"] for p in counts["series"]]
    assert [int(r["without_mask"]) for r in rows] == [p["counts"]["without_mask"] for p in counts["series"]]

    # clicking a day's bars lists that day's people
    day = next(i for i, p in enumerate(counts["series"]) if p["total"])
    x, y = chart.evaluate("(c, i) => { const bar = Chart.getChart(c).getDatasetMeta(0).data[i];"
                          " return [bar.x, bar.y + 2]; }", day)
    chart.click(position={"x": x, "y": y})
    page.wait_for_function("n => document.getElementById('people-table').dataset.total === String(n)",
                           arg=counts["series"][day]["total"], timeout=15_000)
    assert counts["series"][day]["name"] in page.locator("#people-range").text_content()
    page.click("#people-range button")  # back to the whole range
    page.wait_for_function("n => document.getElementById('people-table').dataset.total === String(n)",
                           arg=people, timeout=15_000)

    # people, 25 a page, newest first; filtered by label
    table = page.locator("#people-table")
    assert int(table.get_attribute("data-total")) == people
    assert table.locator("tbody tr").count() == 25
    assert page.locator("#page-info").text_content() == f"1–25 of {people}"
    thumbs = table.locator("img.thumb")
    page.wait_for_function("() => [...document.querySelectorAll('#people-table img.thumb')]"
                           ".every(i => i.complete && i.naturalWidth === 48)", timeout=15_000)
    assert thumbs.count() == 25
    page.click("#next")
    page.wait_for_function("() => document.getElementById('page-info').textContent.startsWith('26–')")
    page.select_option("#label", "without_mask")
    _wait_loaded(page, 2)
    unmasked = http.get("/api/v1/history/people", params={"label": "without_mask", "from": _from_of(page),
                                                          "limit": 500}).json()
    assert 0 < unmasked["total"] < people
    assert int(table.get_attribute("data-total")) == unmasked["total"]
    labels = table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.label)")
    assert labels and set(labels) == {"without_mask"}
    assert page.locator("#page-info").text_content().startswith("1–")  # a new filter starts at page 1
    assert "label=without_mask" in page.url  # the view is in the address
    hidden = chart.evaluate("c => Chart.getChart(c).data.datasets.filter(d => d.hidden).map(d => d.label)")
    assert hidden == ["with mask", "mask incorrect"]
    with page.expect_download() as download:
        page.click("#csv-people")
    rows = _csv_rows(Path(download.value.path()).read_text())
    assert len(rows) == unmasked["total"] and {r["label"] for r in rows} == {"without_mask"}
    assert sorted(int(r["track_id"]) for r in rows) == sorted(p["track_id"] for p in unmasked["items"])

    # a camera and a line: entries through door-a's line, per hour of the range
    page.select_option("#label", "")
    page.select_option("#line", label="door (door-a)")
    _wait_loaded(page, 4)
    assert page.locator("#chart-title").text_content() == "Entries through door (door-a) per day"
    entries = http.get("/api/v1/history/counts", params={"period": "day", "from": _from_of(page), "camera": "door-a",
                                                         "line": "door", "direction": "in"}).json()
    assert int(chart.get_attribute("data-total")) == entries["totals"]["total"] > 0

    # the alerts of the range, and their CSV
    alerts = http.get("/api/v1/history/alerts", params={"from": _from_of(page)}).json()
    assert page.locator("#alerts-table tbody tr[data-kind='person']").count() == min(50, alerts["total"]) > 0
    with page.expect_download() as download:
        page.click("#csv-alerts")
    assert len(_csv_rows(Path(download.value.path()).read_text())) == alerts["total"]
    page.select_option("#line", "")
    _wait_loaded(page, 5)

    # a custom range of the three recorded days: three days of bars holding everyone
    first, last = counts["series"][day]["name"], counts["series"][day + 2]["name"]
    page.select_option("#range", "custom")
    page.fill("#from", first)
    page.fill("#to", last)
    page.wait_for_function("n => document.getElementById('counts-chart').dataset.periods === '3'"
                           " && document.getElementById('counts-chart').dataset.total === String(n)",
                           arg=people, timeout=15_000)
    assert f"from={first}" in page.url and f"to={last}" in page.url
    page.wait_for_timeout(300)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "history.png"), full_page=True)
    http.close()
    assert not errors, errors
    assert not outside, outside  # Chart.js is served by the dashboard: no CDN
    page.close()


def _from_of(page) -> str:
    """The `from` of the page's current range, as the page sends it (from its CSV link)."""
    href = page.locator("#csv-counts").get_attribute("href")
    return dict(p.split("=", 1) for p in href.split("?", 1)[1].split("&"))["from"]


def test_report_prints_to_pdf(history_site, browser) -> None:
    server, people = history_site
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the week of yesterday holds recorded days whatever today is (this week holds none on a Monday)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    page.goto(f"{server.url}/report?span=week&date={day}")
    _wait_loaded(page, 1)
    with server.client() as http:
        report = http.get("/api/v1/history/report", params={"span": "week", "date": day}).json()
    assert page.locator('.kpi[data-kpi="people"] b').text_content() == str(report["totals"]["total"])
    share = int(report["totals"]["masked_share"] * 100 + 0.5)  # as the page rounds (Math.round)
    assert page.locator('.kpi[data-kpi="masked"] b').text_content() == f"{share}%"
    assert int(page.locator("#profile-chart").get_attribute("data-periods")) == 24
    assert int(page.locator("#profile-chart").get_attribute("data-total")) == report["totals"]["total"]
    assert page.locator("#worst-hours tbody tr").count() == len(report["worst_hours"]) > 0
    assert page.locator("#report-cameras tbody tr").count() == 2
    page.emulate_media(media="print")
    assert not page.locator("header").is_visible() and not page.locator("#filters").is_visible()
    assert page.locator("#report").is_visible()
    page.screenshot(path=str(OUTPUT / "report-print.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2  # the page tree and at least one page
    (OUTPUT / "report.pdf").write_bytes(pdf)
    assert not errors, errors
    page.close()

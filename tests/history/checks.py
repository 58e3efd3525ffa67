"""What a history database holds, compared with what was published."""

from __future__ import annotations

import base64
from collections import Counter

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from shared.history.schema import (
    DAY,
    HOUR,
    PEOPLE,
    RESULTS,
    alerts,
    counts,
    crossings,
    people,
    recorder_state,
    thumbnails,
)
from shared.schemas import AlertRecord, LineCrossing
from tests.history.conftest import Published


def position(engine: Engine) -> str | None:
    """The stored results-stream position (None also while there is no schema or no server yet)."""
    try:
        with engine.connect() as conn:
            return conn.execute(select(recorder_state.c.position).where(recorder_state.c.stream == RESULTS)).scalar()
    except DBAPIError:
        return None


def assert_matches(engine: Engine, published: Published, up_to: str | None = None) -> None:
    """The database holds exactly the published rows up to `up_to` (the stored position by default): none
    twice, none missing, thumbnails byte for byte, counts equal to the non-static people and the crossings."""
    up_to = up_to or position(engine)
    expected_people = published.people(up_to) if up_to else []
    with engine.connect() as conn:
        rows = conn.execute(select(people.c.camera, people.c.track_id, people.c.label, people.c.first_seen,
                                   people.c.last_seen, people.c.frames, people.c.best_box, people.c.static,
                                   people.c.zones, thumbnails.c.jpeg)
                            .join_from(people, thumbnails, people.c.id == thumbnails.c.person_id, isouter=True)).all()
        got_crossings = conn.execute(select(crossings.c.camera, crossings.c.line, crossings.c.direction,
                                            crossings.c.track_id)).all()
        got_alerts = conn.execute(select(alerts.c.uid, alerts.c.kind)).all()
        hourly = conn.execute(select(counts.c.kind, counts.c.camera, counts.c.label, func.sum(counts.c.n))
                              .where(counts.c.resolution == HOUR).group_by(counts.c.kind, counts.c.camera,
                                                                          counts.c.label)).all()
        daily_total = conn.execute(select(func.coalesce(func.sum(counts.c.n), 0)).where(counts.c.resolution == DAY)
                                   ).scalar()
    assert sorted((r.camera, r.track_id, r.label, r.first_seen, r.last_seen, r.frames, tuple(r.best_box), r.static,
                   tuple(r.zones), r.jpeg) for r in rows) == \
        sorted((p.camera, p.track_id, p.label, p.first_seen, p.last_seen, p.frames, tuple(p.best_box), p.static,
                tuple(p.zones), base64.b64decode(p.thumbnail)) for p in expected_people)
    expected_crossings = published.of(LineCrossing, up_to) if up_to else []
    assert sorted(got_crossings) == sorted((c.camera, c.line, c.direction, c.track_id) for c in expected_crossings)
    expected_alerts = published.of(AlertRecord, up_to) if up_to else []
    assert sorted(got_alerts) == sorted((a.event["id"], a.kind) for a in expected_alerts)
    want: Counter = Counter()
    for p in expected_people:
        if not p.static:
            want[(PEOPLE, p.camera, p.label)] += 1
    for c in expected_crossings:
        want[(c.direction, c.camera, c.label)] += 1
    assert {(k, c, lab): n for k, c, lab, n in hourly} == dict(want)
    assert daily_total == sum(want.values())


def people_written(engine: Engine) -> int:
    """How many person rows there are (0 also while there is no schema yet)."""
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(people)).scalar()
    except DBAPIError:
        return 0



"""Entrances: ignore zones, zone membership and occupancy, line crossings and static faces of one camera.

It works on tracked frames (shared/people.py), so `maskwatch detect --config --camera` and the tracker
service count the same way.

Public API:
- `track_frame(people, entrances, result, t, image=None) -> (tracked frame, messages)`: one frame through
  the ignore zones, the people tracker and the counter; `end_tracks(people, entrances, records)` gives the
  messages of records ended otherwise (`people.flush()`, `people.expire()`). Messages: each ended track's
  PersonRecord followed by its LineCrossings.
- `EntranceCounter(camera, geometry=None, static_after_s=60, static_motion=0.15, static_forget_s=3600,
  line_margin=0.03)`:
  - `.drop_ignored(result) -> FrameResult`: the frame without the faces whose centre lies in an ignore
    zone (call it before tracking: those faces are never tracked, counted or alerted on);
  - `.observe(result, t) -> FrameResult`: follow every tracked face (zones, line sides, motion); returns
    the frame with `static=True` on the faces of static tracks;
  - `.end(records) -> list[PersonRecord | LineCrossing]`: each ended track's record (with `zones` and
    `static`) followed by its crossings, labelled with the record's voted label (static tracks: none);
  - `.prune(alive)`: forget tracks that ended without a record (shorter than `min_frames`);
  - `.occupancy` (zone -> people in it now), `.static_faces() -> list[dict]`, `.set_geometry(geometry)`
    (a live edit), `.state()` / `.restore(state)` (the tracker's checkpoint),
    `.take_changes() -> set[str]` ("occupancy", "static", "geometry": what changed since the last call).

Line crossings use a hysteresis band of `line_margin` (frame fraction) each side of the line: a track's
side of a line is only known once its face centre is outside the band, and a crossing is counted when
the known side flips and the move passed through the segment itself. Standing on the line therefore
counts nothing, jitter across it counts nothing, and crossing in then back out is one entry and one exit.

Static faces: a track whose face centre stays within `static_motion` face widths (and whose size
changes less than that) for `static_after_s` seconds is static for the rest of its life, and its box
becomes a known static spot. A new track starting on a known spot (IoU >= 0.5) is static from its first
frame until it moves; spots nobody was seen at for `static_forget_s` are forgotten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.zones import CameraGeometry, Geometry, zone_around

if TYPE_CHECKING:
    from shared.people import PeopleTracker

SPOT_IOU = 0.5
MAX_SPOTS = 32
SPOT_REFRESH_S = 60.0  # a static spot's last_seen is refreshed this often at most (fewer checkpoint changes)


@dataclass
class _Track:
    """What the entrance counter knows about one live track."""

    zones: list[str] = field(default_factory=list)  # zones seen in, first visit order
    present: list[str] = field(default_factory=list)  # zones at the last sighting
    sides: dict[str, int] = field(default_factory=dict)  # line -> side known (+1 / -1)
    anchors: dict[str, list[float]] = field(default_factory=dict)  # line -> last point on that side
    crossings: list[list[Any]] = field(default_factory=list)  # [line, "in"/"out", time]
    anchor: list[float] | None = None  # [cx, cy, width, t] where the face has stayed since t
    static: bool = False  # stayed still long enough (for good)
    provisional: bool = False  # started on a known static spot (until it moves)

    @property
    def is_static(self) -> bool:
        """Counted as a static face."""
        return self.static or self.provisional


class EntranceCounter:
    """Zones, lines and static faces of one camera, over its tracked frames."""

    def __init__(self, camera: str, geometry: CameraGeometry | None = None, static_after_s: float = 60.0,
                 static_motion: float = 0.15, static_forget_s: float = 3600.0, line_margin: float = 0.03) -> None:
        self.camera = camera
        self.static_after_s, self.static_motion = static_after_s, static_motion
        self.static_forget_s, self.line_margin = static_forget_s, line_margin
        self.geometry = Geometry(geometry)
        self._tracks: dict[int, _Track] = {}
        self._spots: list[dict[str, Any]] = []
        self._changes: set[str] = {"geometry", "occupancy", "static"}
        self.occupancy: dict[str, int] = {z.name: 0 for z in self.geometry.zones}

    # -- geometry ------------------------------------------------------------------------------------------
    def set_geometry(self, geometry: CameraGeometry) -> None:
        """Apply edited zones and lines; line sides of changed lines are learnt again, crossings made are kept."""
        if geometry == self.geometry.config:
            return
        old = {line.name: line for line in self.geometry.config.lines}
        self.geometry = Geometry(geometry)
        kept = {line.name for line in geometry.lines if old.get(line.name) == line}
        for track in self._tracks.values():
            track.sides = {k: v for k, v in track.sides.items() if k in kept}
            track.anchors = {k: v for k, v in track.anchors.items() if k in kept}
            track.present = []
        self._changes.add("geometry")
        self._count_occupancy()

    # -- per frame -----------------------------------------------------------------------------------------
    def drop_ignored(self, result: FrameResult) -> FrameResult:
        """The frame without faces inside an ignore zone."""
        if not result.faces or not self.geometry.has_ignore:
            return result
        xs, ys = _centres(result)
        ignored = self.geometry.ignored(xs, ys)
        if not ignored.any():
            return result
        return result.model_copy(update={"faces": [f for f, hit in zip(result.faces, ignored) if not hit]})

    def observe(self, result: FrameResult, t: float) -> FrameResult:
        """Follow the tracked faces of one frame; returns it with static faces marked."""
        self._forget_spots(t)
        tracked = [i for i, f in enumerate(result.faces) if f.track_id is not None]
        if not tracked:
            return result
        xs, ys = _centres(result)
        zones = self.geometry.zone_names(xs[tracked], ys[tracked])
        faces = list(result.faces)
        for index, in_zones in zip(tracked, zones):
            face = faces[index]
            track = self._tracks.get(face.track_id)
            if track is None:
                track = self._tracks[face.track_id] = _Track()
                track.provisional = self._on_spot(_normalized(face.box, result)) is not None
            was_static = track.is_static
            self._motion(face.track_id, track, face.box, result, t)
            self._lines(track, float(xs[index]), float(ys[index]), t)
            track.zones += [z for z in in_zones if z not in track.zones]
            track.present = in_zones
            if track.is_static:
                faces[index] = face.model_copy(update={"static": True})
            if track.is_static != was_static:
                self._changes.add("occupancy")
        self._count_occupancy()
        return result.model_copy(update={"faces": faces})

    def end(self, records: list[PersonRecord]) -> list[PersonRecord | LineCrossing]:
        """The records of ended tracks with their zones and static flag, each followed by its crossings."""
        out: list[PersonRecord | LineCrossing] = []
        for record in records:
            track = self._tracks.pop(record.track_id, None) or _Track()
            out.append(record.model_copy(update={"zones": track.zones, "static": track.is_static}))
            if track.is_static:
                continue
            out += [LineCrossing(camera=record.camera, line=line, direction=direction, track_id=record.track_id,
                                 label=record.label, time=round(t, 3)) for line, direction, t in track.crossings]
        if records:
            self._count_occupancy()
        return out

    def prune(self, alive: set[int]) -> None:
        """Forget the tracks that are no longer alive (ended without a record)."""
        gone = [tid for tid in self._tracks if tid not in alive]
        for tid in gone:
            del self._tracks[tid]
        if gone:
            self._count_occupancy()

    # -- reading -------------------------------------------------------------------------------------------
    def static_faces(self) -> list[dict[str, Any]]:
        """The known static spots, each with a suggested ignore zone around it."""
        return [{**spot, "suggestion": zone_around(spot["box"], f"static-{i + 1}").model_dump(mode="json")}
                for i, spot in enumerate(self._spots)]

    def mark_changed(self, what: str) -> None:
        """Have the next `take_changes` report `what` (e.g. "geometry" when its problem changed)."""
        self._changes.add(what)

    def take_changes(self) -> set[str]:
        """What changed since the last call: "occupancy", "static", "geometry"."""
        changes, self._changes = self._changes, set()
        return changes

    # -- checkpoint ----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Open tracks, static spots and the geometry applied, as JSON-able values."""
        return {"geometry": self.geometry.config.as_yaml_dict(), "spots": self._spots,
                "tracks": {str(tid): vars(track) for tid, track in self._tracks.items()}}

    def restore(self, state: dict[str, Any], keep_geometry: bool = False) -> None:
        """Continue from `state()`; with `keep_geometry` the checkpoint's zones and lines are applied too
        (the config's are unusable). Raises ValueError when it is malformed."""
        try:
            tracks = {int(tid): _Track(**saved) for tid, saved in state["tracks"].items()}
            spots = [{"box": [float(v) for v in s["box"]], "first_seen": float(s["first_seen"]),
                      "last_seen": float(s["last_seen"]), "track_id": int(s["track_id"])} for s in state["spots"]]
            geometry = CameraGeometry.model_validate(state["geometry"]) if keep_geometry else None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed entrance state: {exc!r}") from None
        self._tracks, self._spots = tracks, spots
        if geometry is not None:
            self.set_geometry(geometry)
        self._changes |= {"occupancy", "static"}
        self._count_occupancy()

    # -- internals -----------------------------------------------------------------------------------------
    def _motion(self, track_id: int, track: _Track, box: list[int], result: FrameResult, t: float) -> None:
        x1, y1, x2, y2 = box
        cx, cy, width = (x1 + x2) / 2, (y1 + y2) / 2, float(max(1, x2 - x1))
        if track.anchor is None:
            track.anchor = [cx, cy, width, t]
            return
        ax, ay, aw, since = track.anchor
        limit = self.static_motion * aw
        if math.hypot(cx - ax, cy - ay) > limit or abs(width - aw) > limit:
            track.anchor, track.provisional = [cx, cy, width, t], False
            return
        if not track.static and t - since >= self.static_after_s:
            track.static = True
            self._add_spot(_normalized(box, result), t, track_id)
        elif track.is_static:
            spot = self._on_spot(_normalized(box, result))
            if spot is not None and t - spot["last_seen"] >= SPOT_REFRESH_S:
                spot["last_seen"] = round(t, 3)
                self._changes.add("static")

    def _lines(self, track: _Track, x: float, y: float, t: float) -> None:
        for line in self.geometry.lines:
            distance = line.distance(x, y)
            if abs(distance) <= self.line_margin:
                continue  # on the line: the side stays what it was
            side = 1 if distance > 0 else -1
            known = track.sides.get(line.name)
            if known is not None and side != known and line.crosses(tuple(track.anchors[line.name]), (x, y)):
                track.crossings.append([line.name, "in" if side == line.in_sign else "out", t])
            track.sides[line.name] = side
            track.anchors[line.name] = [x, y]

    def _count_occupancy(self) -> None:
        counts = {z.name: 0 for z in self.geometry.zones}
        for track in self._tracks.values():
            if not track.is_static:
                for name in track.present:
                    if name in counts:
                        counts[name] += 1
        if counts != self.occupancy:
            self.occupancy = counts
            self._changes.add("occupancy")

    def _on_spot(self, box: list[float]) -> dict[str, Any] | None:
        best = max(self._spots, key=lambda s: _iou(s["box"], box), default=None)
        return best if best is not None and _iou(best["box"], box) >= SPOT_IOU else None

    def _add_spot(self, box: list[float], t: float, track_id: int) -> None:
        spot = self._on_spot(box)
        if spot is not None:
            spot.update(last_seen=round(t, 3), track_id=track_id)
        else:
            self._spots.append({"box": [round(v, 4) for v in box], "first_seen": round(t - self.static_after_s, 3),
                                "last_seen": round(t, 3), "track_id": track_id})
            self._spots = sorted(self._spots, key=lambda s: s["last_seen"])[-MAX_SPOTS:]
        self._changes.add("static")

    def _forget_spots(self, t: float) -> None:
        kept = [s for s in self._spots if t - s["last_seen"] <= self.static_forget_s]
        if len(kept) != len(self._spots):
            self._spots = kept
            self._changes.add("static")


def track_frame(people: PeopleTracker, entrances: EntranceCounter | None, result: FrameResult, t: float,
                image: np.ndarray | None = None) -> tuple[FrameResult, list[PersonRecord | LineCrossing]]:
    """Track one frame: ignore zones first, then people, then zones, lines and static faces."""
    if entrances is not None:
        result = entrances.drop_ignored(result)
    tracked, ended = people.update(result, t, image)
    if entrances is not None:
        tracked = entrances.observe(tracked, t)
    return tracked, end_tracks(people, entrances, ended)


def end_tracks(people: PeopleTracker, entrances: EntranceCounter | None,
               records: list[PersonRecord]) -> list[PersonRecord | LineCrossing]:
    """The messages of ended tracks: each record (with zones and static flag) followed by its crossings."""
    if entrances is None:
        return list(records)
    messages = entrances.end(records)
    entrances.prune(people.track_ids)
    return messages


def _centres(result: FrameResult) -> tuple[np.ndarray, np.ndarray]:
    """Face box centres in frame fractions."""
    boxes = np.array([f.box for f in result.faces], dtype=np.float64).reshape(-1, 4)
    return ((boxes[:, 0] + boxes[:, 2]) / 2 / max(1, result.width),
            (boxes[:, 1] + boxes[:, 3]) / 2 / max(1, result.height))


def _normalized(box: list[int], result: FrameResult) -> list[float]:
    w, h = max(1, result.width), max(1, result.height)
    return [box[0] / w, box[1] / h, box[2] / w, box[3] / h]


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0

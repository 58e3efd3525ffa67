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

from shared.schemas import Face, FrameResult, LineCrossing, PersonRecord
from shared.zones import CameraGeometry, Geometry, box_iou, zone_around

if TYPE_CHECKING:
    from shared.people import PeopleTracker

SPOT_IOU = 0.5
MAX_SPOTS = 32
SPOT_REFRESH_S = 60.0  # a static spot's last_seen is refreshed this often at most (fewer checkpoint changes)


@dataclass
class _Track:
    """What the entrance counter knows about one live track."""

    sides: np.ndarray  # per line of the geometry: the side known (+1 / -1), 0 before it is known
    zones: list[str] = field(default_factory=list)  # zones seen in, first visit order
    present: list[str] = field(default_factory=list)  # zones at the last sighting
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
        sides = {tid: self._sides_by_name(track) for tid, track in self._tracks.items()}
        self.geometry = Geometry(geometry)
        kept = {line.name for line in geometry.lines if old.get(line.name) == line}
        for tid, track in self._tracks.items():
            track.sides = self._sides_array({k: v for k, v in sides[tid].items() if k in kept})
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
        xs, ys = xs[tracked], ys[tracked]
        inside = self.geometry.zone_hits(xs, ys)
        any_inside = inside.any(axis=1)
        tracks = [self._track(result.faces[i], result) for i in tracked]
        crossed = self._lines(tracks, xs, ys, t)
        faces = list(result.faces)
        for row, (index, track) in enumerate(zip(tracked, tracks)):
            face = faces[index]
            was_static = track.is_static
            self._motion(face.track_id, track, face.box, result, t)
            present = [self.geometry.zones[j].name for j in np.flatnonzero(inside[row])] if any_inside[row] else []
            track.zones += [z for z in present if z not in track.zones]
            track.present = present
            if track.is_static:
                faces[index] = face.model_copy(update={"static": True})
            if track.is_static != was_static:
                self._changes.add("occupancy")
        for row, col in crossed:
            direction = "in" if tracks[row].sides[col] == self.geometry.in_signs[col] else "out"
            tracks[row].crossings.append([self.geometry.lines[col].name, direction, t])
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
                "tracks": {str(tid): {**vars(track), "sides": self._sides_by_name(track)}
                           for tid, track in self._tracks.items()}}

    def restore(self, state: dict[str, Any], keep_geometry: bool = False) -> None:
        """Continue from `state()`; with `keep_geometry` the checkpoint's zones and lines are applied too
        (the config's are unusable). Raises ValueError when it is malformed."""
        try:
            saved = CameraGeometry.model_validate(state["geometry"])
            sides = {int(tid): {str(k): int(v) for k, v in track["sides"].items()}
                     for tid, track in state["tracks"].items()}
            tracks = {int(tid): _Track(**{**track, "sides": np.zeros(0, dtype=np.int8)})
                      for tid, track in state["tracks"].items()}
            spots = [{"box": [float(v) for v in s["box"]], "first_seen": float(s["first_seen"]),
                      "last_seen": float(s["last_seen"]), "track_id": int(s["track_id"])} for s in state["spots"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed entrance state: {exc!r}") from None
        if keep_geometry:
            self.geometry = Geometry(saved)
        same = {line.name for line in self.geometry.lines if line in saved.lines}  # sides of unchanged lines
        for tid, track in tracks.items():
            track.sides = self._sides_array({k: v for k, v in sides[tid].items() if k in same})
        self._tracks, self._spots = tracks, spots
        self._changes |= {"occupancy", "static", "geometry"}
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
        elif track.is_static and any(t - s["last_seen"] >= SPOT_REFRESH_S for s in self._spots):  # else none due
            spot = self._on_spot(_normalized(box, result))
            if spot is not None and t - spot["last_seen"] >= SPOT_REFRESH_S:
                spot["last_seen"] = round(t, 3)
                self._changes.add("static")

    def _track(self, face: Face, result: FrameResult) -> _Track:
        track = self._tracks.get(face.track_id)
        if track is None:
            track = self._tracks[face.track_id] = _Track(np.zeros(len(self.geometry.lines), dtype=np.int8))
            track.provisional = self._on_spot(_normalized(face.box, result)) is not None
        return track

    def _lines(self, tracks: list[_Track], xs: np.ndarray, ys: np.ndarray, t: float) -> list[tuple[int, int]]:
        """Update every track's known side of every line; (track row, line column) of each crossing."""
        if not self.geometry.lines:
            return []
        side, beside = self.geometry.line_sides(xs, ys, self.line_margin)
        known = np.stack([track.sides for track in tracks])
        crossed = (side != 0) & (known != 0) & (side != known) & beside
        updated = np.where(side != 0, side, known)
        for row, track in enumerate(tracks):
            track.sides = updated[row]
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(crossed))]

    def _sides_by_name(self, track: _Track) -> dict[str, int]:
        """The known sides of a track as line name -> side (JSON-able)."""
        return {line.name: int(v) for line, v in zip(self.geometry.lines, track.sides) if v}

    def _sides_array(self, sides: dict[str, int]) -> np.ndarray:
        """Known sides by line name as an array over this counter's lines."""
        return np.array([sides.get(line.name, 0) for line in self.geometry.lines], dtype=np.int8)

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
        if not self._spots:
            return None
        overlap = box_iou(np.array([s["box"] for s in self._spots]), np.array([box]))[:, 0]
        best = int(np.argmax(overlap))
        return self._spots[best] if overlap[best] >= SPOT_IOU else None

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
    w, h = 2.0 * max(1, result.width), 2.0 * max(1, result.height)
    return (np.array([(f.box[0] + f.box[2]) / w for f in result.faces], dtype=np.float64),
            np.array([(f.box[1] + f.box[3]) / h for f in result.faces], dtype=np.float64))


def _normalized(box: list[int], result: FrameResult) -> list[float]:
    w, h = max(1, result.width), max(1, result.height)
    return [box[0] / w, box[1] / h, box[2] / w, box[3] / h]


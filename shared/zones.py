"""A camera's zones and counting lines (the `zones:` and `lines:` of a camera entry), validated with pydantic.

Public API:
- `Zone(name, points, ignore=False)`: a polygon in frame coordinates (0..1, so resolution-independent);
  faces inside an `ignore` zone are never tracked, counted or alerted on.
- `Line(name, points, in_)`: a counting line of two points; `in` (the YAML key) is the side a crossing
  enters: `up`, `down`, `left`, `right`, or the name of a zone of the same camera (its side of the line).
- `CameraGeometry(zones, lines)`: both lists, with names unique and every `in` resolvable.
- `geometry_problem(zones, lines) -> str | None`: one line naming the bad entry ("zones[1] (poster):
  polygon crosses itself"), or None.
- `Geometry(config)`: the compiled form the tracker uses, for many points at once: `.ignored(xs, ys)`,
  `.zone_hits(xs, ys)` (points x zones, ignore zones apart), `.line_sides(xs, ys, margin)` (points x lines:
  side of each line and whether the point is beside the segment), `.in_signs` (the `in` side of each line).
- `box_iou(a, b)`: pairwise IoU of boxes (N x 4 and M x 4, any one unit).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")  # always fullmatch
SIDES: dict[str, tuple[float, float]] = {"up": (0.0, -1.0), "down": (0.0, 1.0), "left": (-1.0, 0.0),
                                         "right": (1.0, 0.0)}
MIN_SIDE_SINE = math.sin(math.radians(10))  # `in: down` needs a line at least 10 degrees off vertical
MIN_LINE_LENGTH = 0.01  # frame fractions
Point = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError("name must be 1-64 letters, digits, spaces, '_', '-' or '.', starting with a letter or digit")
    return value


def _check_points(points: list[Point]) -> list[Point]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) or not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"point [{x:g}, {y:g}] is outside the frame (coordinates are 0..1)")
    return points


class Zone(_Strict):
    """A polygon of at least 3 points in frame coordinates (0..1); `ignore` hides the faces inside."""

    name: str
    points: list[Point] = Field(min_length=3, max_length=64)
    ignore: bool = False

    _name = field_validator("name")(_check_name)

    @field_validator("points")
    @classmethod
    def _polygon(cls, points: list[Point]) -> list[Point]:
        _check_points(points)
        polygon = shapely.Polygon(points)
        why = shapely.is_valid_reason(polygon)
        if polygon.convex_hull.area < 1e-6:
            raise ValueError("polygon has no area (its points lie on one line)")
        if "Self-intersection" in why:
            raise ValueError("polygon crosses itself")
        if polygon.area < 1e-6:
            raise ValueError("polygon has no area (its points lie on one line)")
        if not polygon.is_valid:
            raise ValueError(f"invalid polygon ({why})")
        return points


class Line(_Strict):
    """A counting line between two points; a crossing towards the `in` side is an entry, the other way an exit."""

    name: str
    points: list[Point] = Field(min_length=2, max_length=2)
    in_: str = Field(alias="in")

    _name = field_validator("name")(_check_name)

    @field_validator("points")
    @classmethod
    def _segment(cls, points: list[Point]) -> list[Point]:
        _check_points(points)
        (ax, ay), (bx, by) = points
        if math.hypot(bx - ax, by - ay) < MIN_LINE_LENGTH:
            raise ValueError("line has zero length (its two points are the same)")
        return points


def check_zones(zones: list[Zone]) -> list[Zone]:
    """Zone names are unique within a camera (a pydantic validator of `zones`)."""
    _unique("zones", [z.name for z in zones])
    return zones


def check_lines(lines: list[Line], info: ValidationInfo) -> list[Line]:
    """Line names are unique and each `in` names a side or a zone (a validator of `lines`, after `zones`)."""
    _unique("lines", [line.name for line in lines])
    zones = {z.name: z for z in info.data.get("zones") or []}
    for index, line in enumerate(lines):
        try:
            _in_sign(line, zones)
        except ValueError as exc:
            raise ValueError(f"lines[{index}] ({line.name}): {exc}") from None
    return lines


class CameraGeometry(_Strict):
    """The zones and lines of one camera."""

    zones: list[Zone] = Field(default_factory=list, max_length=64)
    lines: list[Line] = Field(default_factory=list, max_length=32)

    _zones = field_validator("zones")(check_zones)
    _lines = field_validator("lines")(check_lines)

    def as_yaml_dict(self) -> dict[str, Any]:
        """Plain values for YAML/JSON (`in` spelled as in the config file)."""
        return self.model_dump(mode="json", by_alias=True)


def geometry_problem(zones: Any, lines: Any) -> str | None:
    """Why a camera's raw `zones`/`lines` cannot be used (one line naming the entry), or None."""
    try:
        CameraGeometry.model_validate({"zones": zones or [], "lines": lines or []})
    except ValidationError as exc:
        return describe_geometry_error(exc, {"zones": zones, "lines": lines})
    return None


def describe_geometry_error(exc: ValidationError, raw: dict[str, Any], prefix: tuple = ()) -> str:
    """'zones[1] (poster): polygon crosses itself; ...' from a validation error of zones/lines (`prefix`: the
    location of the zones/lines inside the validated object)."""
    parts = []
    for err in exc.errors():
        loc = err["loc"][len(prefix):]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown option {loc[-1]!r}"
        if len(loc) >= 2 and loc[0] in ("zones", "lines") and isinstance(loc[1], int):
            entries = raw.get(loc[0])
            entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            where = f"{loc[0]}[{loc[1]}]" + (f" ({name})" if isinstance(name, str) else "")
            field = str(loc[2]) if len(loc) > 2 and err["type"] != "extra_forbidden" else ""
            parts.append(f"{where}: {field + ': ' if field else ''}{message}")
        elif loc and loc[0] in ("zones", "lines") and message.startswith(("zones[", "lines[")):
            parts.append(message)  # already names its entry (duplicates, `in`)
        else:
            parts.append(f"{'.'.join(str(p) for p in loc) or 'zones/lines'}: {message}")
    return "; ".join(parts)


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{kind}[{index}]: duplicate name {name!r}")
        seen.add(name)


def _in_sign(line: Line, zones: dict[str, Zone]) -> int:
    """+1 or -1: the sign of `CompiledLine.distance` on the line's `in` side; raises ValueError."""
    (ax, ay), (bx, by) = line.points
    length = math.hypot(bx - ax, by - ay)
    nx, ny = -(by - ay) / length, (bx - ax) / length  # unit normal
    if line.in_ in SIDES:
        vx, vy = SIDES[line.in_]
        along = nx * vx + ny * vy
        if abs(along) < MIN_SIDE_SINE:
            raise ValueError(f"in: {line.in_!r} runs along the line (draw it across, or name a zone)")
        return 1 if along > 0 else -1
    zone = zones.get(line.in_)
    if zone is None:
        names = ", ".join(sorted(zones)) or "none"
        raise ValueError(f"in: {line.in_!r} is not up, down, left, right or a zone of this camera (zones: {names})")
    inside = shapely.Polygon(zone.points).representative_point()
    side = (inside.x - ax) * nx + (inside.y - ay) * ny
    if abs(side) < 1e-6:
        raise ValueError(f"in: zone {line.in_!r} lies on the line, so it names no side")
    return 1 if side > 0 else -1


class Geometry:
    """The compiled zones and lines of one camera, tested for many points at once (numpy, shapely)."""

    def __init__(self, config: CameraGeometry | None = None) -> None:
        self.config = config or CameraGeometry()
        zones = {z.name: z for z in self.config.zones}
        self.zones = [z for z in self.config.zones if not z.ignore]
        self.lines = list(self.config.lines)
        self._zone_shapes = np.array([shapely.Polygon(z.points) for z in self.zones], dtype=object)
        self._ignore_shapes = np.array([shapely.Polygon(z.points) for z in self.config.zones if z.ignore],
                                       dtype=object)
        shapely.prepare(self._zone_shapes)
        shapely.prepare(self._ignore_shapes)
        ends = np.array([line.points for line in self.lines], dtype=np.float64).reshape(-1, 2, 2)
        self._start, self._along = ends[:, 0], ends[:, 1] - ends[:, 0]
        length = np.hypot(self._along[:, 0], self._along[:, 1])
        self._normal = np.stack([-self._along[:, 1], self._along[:, 0]], axis=1) / np.maximum(length, 1e-12)[:, None]
        self._length2 = np.maximum(length**2, 1e-12)
        self.in_signs = np.array([_in_sign(line, zones) for line in self.lines], dtype=np.int8)

    @property
    def has_ignore(self) -> bool:
        """Whether any zone is an ignore zone."""
        return bool(len(self._ignore_shapes))

    def ignored(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Boolean per point: inside some ignore zone."""
        if not len(self._ignore_shapes):
            return np.zeros(len(xs), dtype=bool)
        return shapely.contains_xy(self._ignore_shapes[None, :], xs[:, None], ys[:, None]).any(axis=1)

    def zone_hits(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """points x zones booleans: which (non-ignore) zones hold each point, columns in `zones` order."""
        if not len(self._zone_shapes):
            return np.zeros((len(xs), 0), dtype=bool)
        return shapely.contains_xy(self._zone_shapes[None, :], xs[:, None], ys[:, None])

    def line_sides(self, xs: np.ndarray, ys: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """points x lines: the side of each line a point is on (+1 / -1, 0 within `margin` of the line), and
        whether the point lies beside the segment itself (its projection falls between the two ends)."""
        dx, dy = xs[:, None] - self._start[:, 0], ys[:, None] - self._start[:, 1]
        distance = dx * self._normal[:, 0] + dy * self._normal[:, 1]
        side = np.where(distance > margin, 1, np.where(distance < -margin, -1, 0)).astype(np.int8)
        along = (dx * self._along[:, 0] + dy * self._along[:, 1]) / self._length2
        return side, (along >= 0) & (along <= 1)


def zone_around(box: list[float], name: str, grow: float = 0.5) -> Zone:
    """An ignore zone around a (normalized) box, grown by `grow` of its size and clipped to the frame."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * grow / 2, (y2 - y1) * grow / 2
    left, top = max(0.0, x1 - dx), max(0.0, y1 - dy)
    right, bottom = min(1.0, x2 + dx), min(1.0, y2 + dy)
    points = [(round(left, 4), round(top, 4)), (round(right, 4), round(top, 4)),
              (round(right, 4), round(bottom, 4)), (round(left, 4), round(bottom, 4))]
    return Zone(name=name, points=points, ignore=True)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N x 4) and b (M x 4), as N x M."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)

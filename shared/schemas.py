"""Message schemas shared by the command line, the services and the API."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, ValidationError

MASK_LABELS: tuple[str, ...] = ("with_mask", "without_mask", "mask_incorrect")
NOT_FACE = "not_face"
COMPLIANT_LABELS: frozenset[str] = frozenset({"with_mask"})


class CameraStatus(StrEnum):
    """A camera's capture status, as the capture service publishes it (unknown: nothing published yet)."""

    LIVE = "live"
    RETRYING = "retrying"
    FAILED = "failed"
    STOPPED = "stopped"
    UNKNOWN = "unknown"


class Face(BaseModel):
    """One classified face; `box` is [x1, y1, x2, y2] in pixels of the original image."""

    box: list[int] = Field(min_length=4, max_length=4)
    score: float
    label: str
    confidence: float
    probs: dict[str, float]
    track_id: int | None = None
    track_label: str | None = None
    crop: str | None = None  # base64 JPEG of the face with a margin, long side <= 128 px (blurred under privacy)
    static: bool = False  # the face of a static track (poster, screen): never counted (omitted when false)
    reused: bool = False  # label taken from the face's settled track instead of classifying it again


class FrameResult(BaseModel):
    """The result for one image or video frame (one line of `maskwatch detect --json`)."""

    type: Literal["frame"] = "frame"
    source: str
    frame: int | None = None
    time: float | None = None
    width: int
    height: int
    faces: list[Face] = Field(default_factory=list)
    camera: str | None = None
    captured_at: float | None = None
    processed_at: float | None = None
    model_version: str | None = None
    unchanged: bool = False  # no motion: the face detector did not run, the faces are the previous frame's

    def to_json(self) -> str:
        """Serialise as one compact JSON line; `frame` and `time` stay (null for photos), other unset fields go."""
        data = self.model_dump(mode="json")
        for key in ("camera", "captured_at", "processed_at", "model_version"):
            if data[key] is None:
                del data[key]
        if not data["unchanged"]:
            del data["unchanged"]
        for face in data["faces"]:
            for key in ("track_id", "track_label", "crop"):
                if face[key] is None:
                    del face[key]
            if not face["static"]:
                del face["static"]
            if not face["reused"]:
                del face["reused"]
        return json.dumps(data, separators=(",", ":"))

    def without_crops(self) -> FrameResult:
        """A copy whose faces carry no `crop` (what the results stream and the latest-state keys hold)."""
        if all(face.crop is None for face in self.faces):
            return self
        return self.model_copy(update={"faces": [f.model_copy(update={"crop": None}) for f in self.faces]})


class PersonRecord(BaseModel):
    """One tracked person, published once when its track ends."""

    type: Literal["person"] = "person"
    camera: str
    track_id: int
    label: str
    first_seen: float
    last_seen: float
    frames: int
    best_box: list[int] = Field(min_length=4, max_length=4)
    thumbnail: str | None = None  # base64 JPEG of the best-scoring face, long side <= 96 px
    zones: list[str] = Field(default_factory=list)  # names of the camera's zones the track was seen in
    static: bool = False  # a face that barely moved (poster, screen): never counted as a person

    def to_json(self) -> str:
        """Serialise as one compact JSON line (no zones and static left out when empty and false)."""
        data = self.model_dump(mode="json", exclude_none=True)
        for key in ("zones", "static"):
            if not data[key]:
                del data[key]
        return json.dumps(data, separators=(",", ":"))


class LineCrossing(BaseModel):
    """One track crossing a counting line, published once when its track ends or leaves view.

    `label` is the track's voted label at that time (not one frame's); `time` is when it crossed.
    """

    type: Literal["crossing"] = "crossing"
    camera: str
    line: str
    direction: Literal["in", "out"]
    track_id: int
    label: str
    time: float

    def to_json(self) -> str:
        """Serialise as one compact JSON line."""
        return self.model_dump_json()


class AlertRecord(BaseModel):
    """One alert event in the results stream (the same body the alerts list and webhooks carry)."""

    type: Literal["alert"] = "alert"
    camera: str
    kind: str
    time: float
    event: dict[str, Any]

    def to_json(self) -> str:
        """Serialise as one compact JSON line."""
        return self.model_dump_json()


def _message_type(value: Any) -> str:
    """The `type` of a results-stream message ("frame" when absent, as in lines written before it existed)."""
    return value.get("type", "frame") if isinstance(value, dict) else getattr(value, "type", "frame")


ResultMessage = Annotated[
    Annotated[FrameResult, Tag("frame")] | Annotated[PersonRecord, Tag("person")]
    | Annotated[LineCrossing, Tag("crossing")] | Annotated[AlertRecord, Tag("alert")],
    Discriminator(_message_type),
]
RESULT_ADAPTER: TypeAdapter[ResultMessage] = TypeAdapter(ResultMessage)


def parse_result(data: bytes | str) -> FrameResult | PersonRecord | LineCrossing | AlertRecord:
    """Parse one `data` field of the results stream; raises ValueError for anything malformed."""
    try:
        return RESULT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise ValueError(f"malformed result: {exc.error_count()} validation error(s)") from None

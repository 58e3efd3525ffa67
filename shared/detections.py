"""The detections stream: typed publisher and reader of the untracked frame results of one camera.

Public API:
- `publish_detection(pipe, camera, frame_id, result, jpeg)`: queue on a transaction the XADD of the
  detection (FrameResult JSON with face crops, and `frame_id`, the frame's entry id in the camera's frames
  stream) and the frame's JPEG under `keys.frame_jpeg` (kept `FRAME_JPEG_TTL_S`; None: the caller put it in
  the frames Redis). `pipe` is a Redis
  pipeline or the detector's `AckedTransaction` (shared/streams.py).
- `Detection.from_entry(entry_id, fields) -> Detection`: parse one entry; raises ValueError (one line).
- `crops_of(result)` / `with_crops(detection, stored)`: a frame's face crops as kept in the frames Redis
  (`keys.frame_crops`) when there is one, so they never reach the main Redis's append-only file.
- `stream_id(text) -> StreamId`: an entry id as a comparable (milliseconds, sequence) pair.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import NamedTuple

import redis
from pydantic import ValidationError

from shared import keys
from shared.schemas import FrameResult
from shared.streams import AckedTransaction

FRAME_JPEG_TTL_S = 15  # long enough for the reorder window and a tracker takeover


class StreamId(NamedTuple):
    """A Redis stream entry id, ordered as Redis orders them."""

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


def stream_id(text: str | bytes) -> StreamId:
    """Parse 'ms-seq'; raises ValueError."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    ms, _, seq = text.partition("-")
    try:
        return StreamId(int(ms), int(seq or 0))
    except ValueError:
        raise ValueError(f"not a stream id: {text[:40]!r}") from None


@dataclass(frozen=True)
class Detection:
    """One entry of a detections stream."""

    entry_id: StreamId  # position in the detections stream
    frame_id: StreamId  # the frame's entry id in the frames stream (frame order)
    result: FrameResult

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Detection:
        """Parse an XREAD entry; raises ValueError (one line) for a malformed one."""
        try:
            frame_id = stream_id(fields[b"frame_id"])
            result = FrameResult.model_validate_json(fields[b"data"])
        except KeyError as exc:
            raise ValueError(f"detection lacks field {exc.args[0]!r}") from None
        except ValidationError as exc:
            raise ValueError(f"malformed detection: {exc.error_count()} validation error(s)") from None
        return cls(stream_id(entry_id), frame_id, result)


def crops_of(result: FrameResult) -> bytes | None:
    """The face crops of a result as stored in the frames Redis (JSON list), None when it has none."""
    crops = [face.crop for face in result.faces]
    return json.dumps(crops).encode() if any(crops) else None


def with_crops(detection: Detection, stored: bytes | None) -> Detection:
    """The detection with its faces' crops put back from `crops_of` (unchanged when they are gone)."""
    try:
        crops = json.loads(stored) if stored else None
    except ValueError:
        crops = None
    if not isinstance(crops, list) or len(crops) != len(detection.result.faces):
        return detection
    faces = [face.model_copy(update={"crop": crop}) for face, crop in zip(detection.result.faces, crops)]
    return replace(detection, result=detection.result.model_copy(update={"faces": faces}))


def publish_detection(pipe: redis.client.Pipeline | AckedTransaction, camera: str, frame_id: str,
                      result: FrameResult, jpeg: bytes | None) -> None:
    """Queue the detection of one frame and its JPEG on `pipe` (an unchanged frame has no JPEG: empty; None:
    the caller put it in the frames Redis)."""
    if jpeg:
        pipe.set(keys.frame_jpeg(camera, frame_id), jpeg)
        pipe.expire(keys.frame_jpeg(camera, frame_id), FRAME_JPEG_TTL_S)
    pipe.xadd(keys.detections_stream(camera), {"data": result.to_json(), "frame_id": frame_id},
              maxlen=keys.DETECTIONS_MAXLEN, approximate=True)

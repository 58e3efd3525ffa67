"""Names of every Redis stream and key maskwatch uses, in one place."""

PREFIX = "maskwatch"
RESULTS_STREAM = f"{PREFIX}:results"
DETECTOR_GROUP = "detectors"
CAMERAS_SET = f"{PREFIX}:cameras"


def frames_stream(camera: str) -> str:
    """Stream of JPEG frames pushed by the capture service for one camera."""
    return f"{PREFIX}:frames:{camera}"


def camera_state(camera: str) -> str:
    """Hash with the capture state of one camera (status, last_frame_time, frames_*, error)."""
    return f"{PREFIX}:camera:{camera}:state"


def latest_result(camera: str) -> str:
    """Latest FrameResult JSON of one camera, set by the detector."""
    return f"{PREFIX}:camera:{camera}:latest"


def latest_jpeg(camera: str) -> str:
    """JPEG bytes of the frame that `latest_result` describes."""
    return f"{PREFIX}:camera:{camera}:latest_jpeg"


# Dashboard aggregation (rolling counts kept in Redis so restarts and replicas agree).
DASHBOARD_GROUP = "dashboard"


def stats_bucket(camera: str, resolution: str, start: int) -> str:
    """Hash of counts for one camera over one time bucket (`resolution` "m" or "h", `start` unix s)."""
    return f"{PREFIX}:stats:{camera}:{resolution}:{start}"


def stats_totals(camera: str) -> str:
    """Hash of all-time counts for one camera (faces/people per label, frames, latency histogram)."""
    return f"{PREFIX}:stats:{camera}:totals"


def camera_events(camera: str) -> str:
    """Capped list of recent events (JSON) of one camera, newest first."""
    return f"{PREFIX}:camera:{camera}:events"


def detector_worker(name: str) -> str:
    """Hash of one detector worker (frames_processed, frames_skipped, last_seen, model_version).

    It expires when the worker dies.
    """
    return f"{PREFIX}:detector:{name}"

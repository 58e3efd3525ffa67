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

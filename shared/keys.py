"""Names of every Redis stream and key maskwatch uses, in one place."""

PREFIX = "maskwatch"
RESULTS_STREAM = f"{PREFIX}:results"
DETECTOR_GROUP = "detectors"
CAMERAS_SET = f"{PREFIX}:cameras"
ALERTS_LIST = f"{PREFIX}:alerts"  # recent alert events (JSON), newest first (shared/alert_log.py)
REVIEW_ITEMS = f"{PREFIX}:review:items"  # hash id -> ReviewItem JSON (shared/review/queue.py)
REVIEW_QUEUED = f"{PREFIX}:review:queued"  # sorted set id -> queue time, waiting for a label
REVIEW_LABELLED = f"{PREFIX}:review:labelled"  # sorted set id -> queue time, labelled, waiting for export
PHONE_CAMERAS = f"{PREFIX}:phone:cameras"  # camera ids streamed by phones (capture leaves them alone)
RECORDERS = f"{PREFIX}:recorders"  # sorted set: recorder name -> expiry of its health hash (shared/recorder_health.py)
DETECTIONS_MAXLEN = 600  # entries kept per camera's detections stream (about a minute at 10 fps)


def frames_stream(camera: str) -> str:
    """Stream of JPEG frames pushed by the capture service for one camera."""
    return f"{PREFIX}:frames:{camera}"


def camera_state(camera: str) -> str:
    """Hash with the capture state of one camera (status, last_frame_time, frames_*, error)."""
    return f"{PREFIX}:camera:{camera}:state"


def detections_stream(camera: str) -> str:
    """Stream of one camera's untracked frame results (with face crops), published by the detector workers.

    Each entry: `data` (FrameResult JSON) and `frame_id` (the frame's entry id in `frames_stream`).
    """
    return f"{PREFIX}:detections:{camera}"


def frame_image(camera: str, frame: int) -> str:
    """JPEG of one captured frame in the frames Redis (`frames_redis_url`); its stream entry names this key."""
    return f"{PREFIX}:frame:{camera}:{frame}"


def frame_jpeg(camera: str, frame_id: str) -> str:
    """JPEG of one processed frame (blurred when privacy blur is on), kept briefly for the tracker.

    The tracker copies it to `latest_jpeg` together with the tracked `latest_result` of the same frame.
    """
    return f"{PREFIX}:camera:{camera}:jpeg:{frame_id}"


def frame_crops(camera: str, frame_id: str) -> str:
    """JSON list of the face crops of one processed frame (in its faces' order), in the frames Redis."""
    return f"{PREFIX}:camera:{camera}:crops:{frame_id}"


def latest_result(camera: str) -> str:
    """Latest tracked FrameResult JSON of one camera, set by the tracker that owns the camera."""
    return f"{PREFIX}:camera:{camera}:latest"


def latest_jpeg(camera: str) -> str:
    """JPEG bytes of the frame that `latest_result` describes."""
    return f"{PREFIX}:camera:{camera}:latest_jpeg"


# Dashboard aggregation (rolling counts kept in Redis so restarts and replicas agree).
DASHBOARD_CURSOR = f"{PREFIX}:dashboard:counted"  # id of the last results entry counted by any replica


def stats_bucket(camera: str, resolution: str, start: int) -> str:
    """Hash of counts for one camera over one time bucket (`resolution` "m" or "h", `start` unix s)."""
    return f"{PREFIX}:stats:{camera}:{resolution}:{start}"


def stats_totals(camera: str) -> str:
    """Hash of all-time counts for one camera (faces/people per label, frames, latency histogram)."""
    return f"{PREFIX}:stats:{camera}:totals"


def camera_overrides(camera: str) -> str:
    """Hash of a camera's run-time switches set by commands: `enabled`, `alerts` ("1"/"0"; shared/overrides.py)."""
    return f"{PREFIX}:camera:{camera}:overrides"


def camera_events(camera: str) -> str:
    """Capped list of recent events (JSON) of one camera, newest first."""
    return f"{PREFIX}:camera:{camera}:events"


def camera_geometry(camera: str) -> str:
    """JSON of the zones and lines the tracker applies to one camera now, with the config problem if any."""
    return f"{PREFIX}:camera:{camera}:geometry"


def zone_occupancy(camera: str) -> str:
    """JSON {time, zones: {zone: people in it now}} of one camera, set by the tracker that owns it."""
    return f"{PREFIX}:camera:{camera}:occupancy"


def static_faces(camera: str) -> str:
    """JSON list of one camera's static face spots (posters, screens) with suggested ignore zones."""
    return f"{PREFIX}:camera:{camera}:static_faces"


def tracker_lease(camera: str) -> str:
    """Name of the tracker that owns one camera; expires unless the owner renews it."""
    return f"{PREFIX}:tracker:lease:{camera}"


def capture_lease(camera: str) -> str:
    """Name of the capture process that reads one camera; expires unless the owner renews it."""
    return f"{PREFIX}:capture:lease:{camera}"


def capture_instance(name: str) -> str:
    """Hash of one live capture process (cameras it reads, last_seen); it expires when the process dies."""
    return f"{PREFIX}:capture:instance:{name}"


def capture_instances_pattern() -> str:
    """SCAN pattern matching every `capture_instance` key."""
    return capture_instance("*")


def tracker_checkpoint(camera: str) -> str:
    """JSON checkpoint of one camera's tracker state, written with every publish of the owning tracker."""
    return f"{PREFIX}:tracker:checkpoint:{camera}"


def tracker_instance(name: str) -> str:
    """Hash of one live tracker process (cameras it owns, last_seen); it expires when the tracker dies."""
    return f"{PREFIX}:tracker:instance:{name}"


def tracker_instances_pattern() -> str:
    """SCAN pattern matching every `tracker_instance` key."""
    return tracker_instance("*")


def settled_tracks(camera: str) -> str:
    """One camera's settled tracks (shared/settled.py JSON), set by its tracker, read by the detector workers."""
    return f"{PREFIX}:camera:{camera}:settled"


def camera_keys(camera: str) -> list[str]:
    """Every key of one camera that goes away with it when it leaves the config (stats buckets expire alone)."""
    return [camera_state(camera), frames_stream(camera), detections_stream(camera), latest_result(camera),
            latest_jpeg(camera), camera_events(camera), capture_lease(camera), tracker_checkpoint(camera),
            camera_overrides(camera), camera_geometry(camera), zone_occupancy(camera), static_faces(camera),
            settled_tracks(camera)]


def detector_worker(name: str) -> str:
    """Hash of one detector worker (frames_processed, frames_skipped, last_seen, model_version).

    It expires when the worker dies.
    """
    return f"{PREFIX}:detector:{name}"


def recorder_health(name: str) -> str:
    """Hash of one recorder process's figures (rows written, lag, errors); it expires when the recorder dies."""
    return f"{PREFIX}:recorder:{name}"


def phone_pairing(token_digest: str) -> str:
    """A pending phone pairing, by the SHA-256 of its single-use token (the token itself is never stored)."""
    return f"{PREFIX}:phone:pairing:{token_digest}"


def phone_session(camera: str) -> str:
    """Hash of a paired phone camera: `secret` (SHA-256 of the phone's session secret), `connection`."""
    return f"{PREFIX}:phone:session:{camera}"

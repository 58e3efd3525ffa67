"""The tracker service: per-camera people tracking, after the stateless detector workers.

`maskwatch tracker --config cameras.yaml` (one or more replicas). Data flow per camera:

    detector workers ──► maskwatch:detections:<camera> ──► tracker (lease owner) ──► maskwatch:results
    (any worker, any     untracked FrameResults with         reorder, ByteTrack,       tracked frames, person
     frame, out of       face crops + the frame's id         voting, observers         records; latest keys;
     order)                                                                            alerts list; checkpoint

Ownership. Each camera has a lease key (`keys.tracker_lease`, expiry `tracker.lease_ttl_s`, 3 s). Every
replica renews its leases each second and takes free cameras up to its fair share (cameras / live
replicas, rounded up), giving one back per second when it holds more. A replica that dies (kill -9)
stops renewing: within `lease_ttl_s` + 1 s another replica takes its cameras.

Frame order. Workers finish frames out of order. A camera's detections wait in a reorder buffer
(services/tracker/reorder.py) until every earlier frame is done: the buffer releases frames older than
the oldest frame the detector group still holds pending (XPENDING, read in the same round trip as the
detections, so a frame acknowledged before it is already in the stream). Frames acknowledged without a
result (skipped by the workers) are thus not waited for. If a worker dies holding a frame, the later
frames are released after `tracker.reorder_window_s` (1 s) anyway. A frame that arrives after a later
one was tracked is *late*: it is published to the results stream untracked (no track ids, its faces
still count) and does not move the latest-state keys.

Exactly once. Everything one step of a camera produces - tracked frames (crops stripped), person
records (with a thumbnail of the track's best face), the latest result and JPEG, alert events, frame
counters - is written in ONE MULTI/EXEC together with the camera's checkpoint (`keys.tracker_checkpoint`:
open tracks with their Kalman state, votes and best crops, the alert rules' state, the last frame
tracked and the detections-stream position). The transaction WATCHes the lease, so it commits only
while this replica owns the camera. A replica that takes a camera over loads the checkpoint and reads
the detections stream again from the oldest entry that was still buffered; entries the checkpoint
already covers are skipped. So a kill -9 at any point publishes no frame or person twice and loses
none, as long as the detections are still in the stream (`keys.DETECTIONS_MAXLEN`, about a minute at
10 fps). After a Redis error whose outcome is unknown the camera is likewise resumed from its checkpoint.
Webhooks are posted when an alert is raised, before the commit: after a takeover the same alert can be
posted again, with the same `id` (ids derive from the event), so receivers can drop it.

Shutdown (SIGTERM): the buffered frames are tracked and published; if another replica is alive the
cameras are handed over with their open tracks (released leases, checkpoint kept), otherwise the open
tracks are ended and their person records published.

Entrances. Each camera's zones, counting lines, ignore zones and static faces (shared/entrances.py,
docs/entrances.md) are tracker state: faces in ignore zones are dropped before tracking, person records get
their zones and static flag and are followed by their LineCrossings in the same transaction, the
entrance state is in the checkpoint, and the zone occupancy, static spots and applied zones/lines go to
their keys (`keys.zone_occupancy`, `keys.static_faces`, `keys.camera_geometry`) with the step that changed
them. `maskwatch tracker --config FILE` re-reads FILE every `capture.reload_interval` and applies edited
zones and lines; a camera whose new ones are bad keeps those it had (the problem goes to its geometry key).

Observers. A tracker calls, for every camera it owns, a list of observers built by
`observers(camera)` (`TrackerService(..., observers=...)`), in frame order:
- `on_frame(result)`: the tracked FrameResult, faces still carrying their `crop` (base64 JPEG);
- `on_person(record)`: each PersonRecord when its track ends (with `thumbnail`);
- `on_crossing(crossing)` (optional): each LineCrossing, right after its track's record.
Both may return alert events (dicts), which go to the alerts list in the publishing transaction.
Optional: `snapshot()`/`restore(state)` (kept in the checkpoint, so observer state survives a
takeover) and `queue_writes(pipe)` (queue Redis writes on the publishing transaction: exactly once).
`CameraAlerts` (services/tracker/observers.py) is the alert rules' observer.
"""

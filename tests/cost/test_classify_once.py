"""Classify each person a few times (shared/settled.py): settled tracks lend their label, re-checks still see
a label change, stale or missing state means every face is classified."""

from __future__ import annotations

import json

import cv2
import numpy as np

from shared.model_store import ModelStore
from shared.people import PeopleTracker
from shared.pipeline import load_pipeline
from shared.schemas import Face, FrameResult
from shared.settled import (
    GROWTH,
    MAX_AGE_FRAMES,
    RECHECK_FRAMES,
    RECHECK_MAX_FRAMES,
    FrameHints,
    SettledTrack,
    SettledTracks,
)
from tests.conftest import REPO
from tests.tracking.synthetic import face


def settled(frame: int, box: list[int], checked: int | None = None, label: str = "with_mask",
            seen: int = 0) -> SettledTracks:
    area = (box[2] - box[0]) * (box[3] - box[1])
    return SettledTracks(frame=frame, tracks=[SettledTrack(id=1, box=box, label=label, confidence=0.95,
                                                           probs={label: 0.95}, checked=frame if checked is None
                                                           else checked, area=area, seen=seen)])


def test_a_face_continuing_a_settled_track_takes_its_label_until_the_recheck() -> None:
    box = [100, 100, 160, 160]
    moved = np.array([[104, 102, 164, 162]], np.float32)
    assert FrameHints(settled(20, box), 21).match(moved)[0].id == 1
    assert FrameHints(settled(28, box, checked=20, seen=RECHECK_FRAMES - 2), 29).match(moved)[0] is not None
    assert FrameHints(settled(29, box, checked=20, seen=RECHECK_FRAMES - 1), 30).match(moved) == [None]
    # the frames answered count, not the frames numbered (a worker skipping frames), up to RECHECK_MAX_FRAMES
    late = 20 + RECHECK_MAX_FRAMES
    assert FrameHints(settled(late - 2, box, checked=20, seen=3), late - 1).match(moved)[0] is not None
    assert FrameHints(settled(late - 1, box, checked=20, seen=3), late).match(moved) == [None]


def test_a_grown_face_far_face_and_stale_or_missing_state_are_classified() -> None:
    state = settled(20, [100, 100, 160, 160])
    grown = np.array([[90, 90, 90 + 60 * GROWTH ** 0.5 + 4, 90 + 60 * GROWTH ** 0.5 + 4]], np.float32)
    assert FrameHints(state, 21).match(grown) == [None]  # a better view: classify again
    assert FrameHints(state, 21).match(np.array([[400, 100, 460, 160]], np.float32)) == [None]
    box = np.array([[100, 100, 160, 160]], np.float32)
    assert FrameHints(state, 21 + MAX_AGE_FRAMES).match(box) == [None]  # the tracker fell behind: stale
    assert FrameHints(state, 20).match(box) == [None]  # not newer than the state
    assert FrameHints(state, None).match(box) == [None]
    assert SettledTracks.parse(None) is None and SettledTracks.parse(b"{not json") is None
    assert SettledTracks.parse(b'{"frame": 1}') is None


def test_two_faces_never_take_the_same_track() -> None:
    state = settled(20, [100, 100, 160, 160])
    both = np.array([[100, 100, 160, 160], [102, 100, 162, 160]], np.float32)
    assert sum(track is not None for track in FrameHints(state, 21).match(both)) == 1


def run_clip(people: PeopleTracker, labels: list[str], full: bool = False,
             every: int = 1) -> tuple[list[FrameResult], list[int]]:
    """A face walking slowly, its true label per frame; the classifier runs only where no settled track lends one.
    With `every` > 1 only every so many frames are answered (an overloaded worker skips the others)."""
    out, classified = [], []
    for i, true_label in list(enumerate(labels))[::every]:
        box = face(100 + 2 * i, 100, label=true_label, confidence=0.9)
        track = None if full else FrameHints(people.settled(), i).match(np.array([box.box], np.float32))[0]
        if track is None:
            classified.append(i)
        else:
            box = box.model_copy(update={"label": track.label, "confidence": track.confidence, "reused": True})
        result, _ended = people.update(FrameResult(source="c", frame=i, time=i / 10, width=640, height=360,
                                                   faces=[box]), i / 10)
        out.append(result)
    return out, classified


def test_settled_tracks_are_not_reclassified_every_frame() -> None:
    results, classified = run_clip(PeopleTracker("c", 10.0), ["with_mask"] * 40)
    assert classified == [0, 1, 2, 12, 22, 32]  # three votes settle it, then one re-check per RECHECK_FRAMES
    assert all(r.faces[0].track_label == "with_mask" for r in results)
    people = PeopleTracker("c", 10.0)
    run_clip(people, ["with_mask"] * 40)
    (record,) = people.flush()
    assert record.frames == 40 and record.label == "with_mask"  # reused faces count as seen, not as votes


def test_rechecks_count_the_frames_answered_up_to_a_limit() -> None:
    _results, classified = run_clip(PeopleTracker("c", 10.0), ["with_mask"] * 80, every=2)
    assert classified == [0, 2, 4, 24, 44, 64]  # every RECHECK_FRAMES answered frames, not every 10 numbered
    _results, classified = run_clip(PeopleTracker("c", 10.0), ["with_mask"] * 80, every=4)
    assert classified == [0, 4, 8, 40, 72]  # at the latest RECHECK_MAX_FRAMES after the last check


def test_a_mask_pulled_down_is_still_seen() -> None:
    labels = ["with_mask"] * 20 + ["without_mask"] * 30
    results, classified = run_clip(PeopleTracker("c", 10.0), labels)
    switched = next(i for i, r in enumerate(results) if r.faces[0].track_label == "without_mask")
    assert switched <= 20 + RECHECK_FRAMES + 3  # the next re-check disagrees, then a few votes switch it
    full_results, _ = run_clip(PeopleTracker("c", 10.0), labels, full=True)
    full_switch = next(i for i, r in enumerate(full_results) if r.faces[0].track_label == "without_mask")
    assert switched <= full_switch  # fewer stacked votes of the old label: not later than classifying every frame
    assert set(range(switched - 2, switched + 1)) <= set(classified)  # after a disagreeing re-check: every frame
    assert len(classified) < len(labels) // 2


def test_settled_state_survives_a_checkpoint() -> None:
    people = PeopleTracker("c", 10.0)
    run_clip(people, ["with_mask"] * 6)
    copy = PeopleTracker("c", 10.0)
    copy.restore(people.state())
    assert copy.settled() == people.settled() and copy.settled().tracks[0].checked == 2
    assert copy.settled().tracks[0].seen == 3


def test_the_pipeline_reuses_labels_and_classifies_the_rest(tiny_store: ModelStore, scene_photos) -> None:
    pipeline = load_pipeline(tiny_store)
    image = cv2.imread(str(scene_photos[4]))
    faces = pipeline.process(image)
    assert len(faces) >= 2
    seen: list[int] = []
    predict = pipeline.classifier.predict
    pipeline.classifier.predict = lambda crops: (seen.append(len(crops)), predict(crops))[1]
    first = faces[0]
    area = (first.box[2] - first.box[0]) * (first.box[3] - first.box[1])
    state = SettledTracks(frame=5, tracks=[SettledTrack(id=7, box=first.box, label="mask_incorrect", confidence=0.9,
                                                        probs={"mask_incorrect": 0.9}, checked=5, area=area)])
    again = pipeline.process(image, FrameHints(state, 6))
    assert seen == [len(faces) - 1]  # one crop fewer classified
    assert [f.box for f in again] == [f.box for f in faces]
    assert again[0].reused and again[0].label == "mask_incorrect" and not any(f.reused for f in again[1:])
    assert [f.label for f in again[1:]] == [f.label for f in faces[1:]]
    pipeline.process(image, FrameHints(state, 6 + MAX_AGE_FRAMES))  # stale: everything classified
    assert seen[-1] == len(faces)


def test_reused_faces_serialise_compactly() -> None:
    plain = face(0, 0)
    assert "reused" not in plain.model_copy().model_dump_json(exclude_defaults=True)
    line = FrameResult(source="c", width=1, height=1, faces=[plain.model_copy(update={"reused": True})]).to_json()
    assert '"reused":true' in line and "unchanged" not in line


def test_maskwatch_detect_gates_still_frames_and_reuses_labels_unless_full(tiny_store, tmp_path, shared_data) -> None:
    from tests.core.test_detect_command import maskwatch
    from tests.tracking.synthetic import Walker, write_clip

    bare = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00006.jpg"))
    # a face walks for 2 s, then the hall is empty and still for 4 s (10 fps)
    clip = write_clip(tmp_path / "hall.mp4", [Walker(bare, start=0, end=20, x=20, y=100, dx=15)], frames=60, fps=10)
    runs = {}
    for mode in ("gated", "full"):
        out_file = tmp_path / f"{mode}.jsonl"
        out = maskwatch(tiny_store, "detect", str(clip), "--json", str(out_file), "--no-progress",
                        *(["--full"] if mode == "full" else []))
        assert out.returncode == 0, out.stderr
        lines = [json.loads(line) for line in out_file.read_text().splitlines()]
        runs[mode] = ([line for line in lines if line["type"] == "frame"],
                      [line for line in lines if line["type"] == "person"])
    (gated, gated_people), (full, full_people) = runs["gated"], runs["full"]
    assert len(gated) == len(full) == 60
    still = [f["frame"] for f in gated if f.get("unchanged")]
    # the empty stretch, after the fading of the walker's ghost and hold_s, but for a keyframe every 2 s
    assert len(still) >= 15 and min(still) >= 20, still
    assert not any(f.get("unchanged") for f in full)
    assert sum(face.get("reused", False) for f in gated for face in f["faces"]) >= 5
    assert not any(face.get("reused") for f in full for face in f["faces"])
    assert len(gated_people) == len(full_people) == 1
    assert gated_people[0]["label"] == full_people[0]["label"]


def test_a_video_run_overlapped_gives_the_answers_of_one_frame_after_the_other(airport_video) -> None:
    """`maskwatch detect` detects the next frame while this one is classified and tracked (shared/overlap.py,
    one frame a batch): each frame still reads the settled tracks after the frame before it, so the faces,
    labels and reused flags are those of the frames run in turn; frames the gate skips are not detected."""
    from shared.overlap import OverlappedPipeline

    pipeline = load_pipeline(ModelStore(REPO / "models"))
    capture, frames = cv2.VideoCapture(str(airport_video)), []
    while len(frames) < 24:
        ok, image = capture.read()
        assert ok
        frames.append((len(frames), image))
    skipped = {5, 6, 13}  # frames a motion gate found still

    def in_turn() -> list[list[Face] | None]:
        people, out = PeopleTracker("c", 25.0), []
        for index, image in frames:
            faces = None if index in skipped else pipeline.process(image, FrameHints(people.settled(), index))
            people.update(FrameResult(source="c", frame=index, width=640, height=360, faces=faces or [],
                                      unchanged=faces is None), index / 25)
            out.append(faces)
        return out

    def overlapped() -> list[list[Face] | None]:
        people, out, detected = PeopleTracker("c", 25.0), [], []
        detect = pipeline.detect
        pipeline.detect = lambda image: (detected.append(image), detect(image))[1]
        with OverlappedPipeline(pipeline, ahead=1, max_batch=1) as run:
            for done in run.run(frames, lambda item: item[1], lambda item: FrameHints(people.settled(), item[0]),
                                lambda item: item[0] not in skipped):
                assert done.error is None and done.image is not None
                people.update(FrameResult(source="c", frame=done.item[0], width=640, height=360,
                                          faces=done.faces or [], unchanged=done.faces is None), done.item[0] / 25)
                out.append(done.faces)
        pipeline.detect = detect
        assert len(detected) == len(frames) - len(skipped)
        return out

    expected, got = in_turn(), overlapped()
    assert [f is None for f in got] == [i in skipped for i, _image in frames]
    assert got == expected
    assert sum(face.reused for faces in got if faces for face in faces) >= 20  # classify-once at work

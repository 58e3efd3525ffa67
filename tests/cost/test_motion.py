"""Motion gating (shared/motion.py): a still scene with sensor noise and slow lighting changes is skipped,
a moving object is not, a person standing still gets periodic full frames."""

from __future__ import annotations

import numpy as np
import pytest

from shared.motion import MotionConfig, MotionGate

FPS = 10.0


def scene(rng: np.random.Generator, t: float, square_x: int | None = None, light: float = 0.0) -> np.ndarray:
    """A 320x240 textured scene with sensor noise, an optional 30x30 object at `square_x`, and a lighting offset."""
    base = np.add.outer(np.arange(240) % 97, np.arange(320) % 61).astype(np.float32)  # fixed texture
    image = np.repeat(base[:, :, None], 3, axis=2) + light + rng.normal(0, 4, (240, 320, 3))
    if square_x is not None:
        image[100:130, square_x:square_x + 30] = (20, 200, 60)
    return np.clip(image, 0, 255).astype(np.uint8)


def run(gate: MotionGate, frames: list[np.ndarray]) -> list[str]:
    reasons = []
    for i, image in enumerate(frames):
        gate.needs_detector(image, i / FPS)
        reasons.append(gate.last_reason)
    return reasons


def test_a_still_scene_with_noise_and_slow_lighting_is_skipped_but_for_keyframes() -> None:
    rng = np.random.default_rng(0)
    frames = [scene(rng, i / FPS, light=i * 0.5) for i in range(100)]  # +50 grey levels over 10 s
    reasons = run(MotionGate(MotionConfig(keyframe_s=2.0)), frames)
    assert reasons[0] == "first"
    assert "motion" not in reasons, reasons
    full = [i for i, r in enumerate(reasons) if r != "still"]
    assert full == [0, 20, 40, 60, 80], full  # one full frame every keyframe_s
    assert reasons.count("still") == 95


def test_a_sudden_global_brightness_change_is_not_motion() -> None:
    rng = np.random.default_rng(1)
    frames = [scene(rng, i / FPS, light=30.0 if i >= 10 else 0.0) for i in range(20)]
    assert "motion" not in run(MotionGate(), frames)


def test_a_moving_object_is_motion_and_frames_after_it_are_held() -> None:
    rng = np.random.default_rng(2)
    frames = [scene(rng, i / FPS) for i in range(10)]
    frames += [scene(rng, i / FPS, square_x=50 + 10 * i) for i in range(10)]  # walks across
    frames += [scene(rng, i / FPS) for i in range(30)]  # gone again
    reasons = run(MotionGate(MotionConfig(hold_s=1.0, keyframe_s=60)), frames)
    assert reasons[10:20] == ["motion"] * 10
    assert all(r in ("hold", "motion") for r in reasons[20:30]), reasons[20:30]  # hold_s after the last motion
    assert reasons[-10:] == ["still"] * 10


def test_a_person_standing_still_is_absorbed_but_keyframes_keep_coming() -> None:
    rng = np.random.default_rng(3)
    frames = [scene(rng, i / FPS) for i in range(5)] + [scene(rng, i / FPS, square_x=150) for i in range(120)]
    reasons = run(MotionGate(MotionConfig(keyframe_s=2.0, hold_s=1.0)), frames)
    assert reasons[5] == "motion"
    tail = reasons[100:]
    assert "still" in tail and "motion" not in tail  # absorbed into the background
    assert tail.count("keyframe") >= 1  # ... and still looked at every 2 s


@pytest.mark.parametrize("min_area, expected", [(0.001, "motion"), (0.05, "still")])
def test_min_area_decides_how_big_a_change_counts(min_area: float, expected: str) -> None:
    rng = np.random.default_rng(4)
    frames = [scene(rng, 0.0) for _ in range(5)] + [scene(rng, 0.5, square_x=150)]  # 30x30: 1.2 % of the frame
    reasons = run(MotionGate(MotionConfig(min_area=min_area, keyframe_s=60, hold_s=0)), frames)
    assert reasons[-1] == expected


def test_disabled_gate_sends_every_frame_to_the_detector() -> None:
    rng = np.random.default_rng(5)
    gate = MotionGate(MotionConfig(enabled=False))
    assert all(gate.needs_detector(scene(rng, 0.0), i / FPS) for i in range(5))
    assert gate.last_reason == "off"


def test_motion_settings_are_validated_per_camera() -> None:
    from shared.config import parse_config

    config = parse_config("cameras:\n - {id: a, url: a.mp4, motion: {threshold: 0}}\n"
                          " - {id: b, url: b.mp4, motion: {enabled: false}}\n - {id: c, url: c.mp4}\n")
    assert [c.id for c in config.cameras] == ["b", "c"]
    assert "motion.threshold" in config.problems[0]
    assert not config.cameras[0].motion.enabled and config.cameras[1].motion.enabled


def test_change_inside_an_ignore_zone_is_not_motion() -> None:
    rng = np.random.default_rng(6)
    frames = [scene(rng, 0.0) for _ in range(5)] + [scene(rng, 0.5, square_x=150)]  # the object at x 150-180
    screen = [(0.4, 0.3), (0.65, 0.3), (0.65, 0.65), (0.4, 0.65)]  # covers it (x 128-208, y 72-156 of 320x240)
    assert run(MotionGate(MotionConfig(keyframe_s=60, hold_s=0), ignore=[screen]), frames)[-1] == "still"
    assert run(MotionGate(MotionConfig(keyframe_s=60, hold_s=0)), frames)[-1] == "motion"

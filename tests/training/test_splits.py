"""The fixed held-out list, group-aware splits and duplicate detection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.training.conftest import COLOURS, square_image
from training.dataset import scan_folders
from training.dedup import duplicate_groups, hash_files, near_duplicate_pairs
from training.splits import ILC2021_VAL, heldout_stems, random_split, read_list, stratified_group_split
from training.train import TrainConfig, make_split


def test_generator_reproduces_committed_heldout_list(scene_photos: list[Path]) -> None:
    stems = [p.stem for p in scene_photos]
    committed = read_list(ILC2021_VAL)
    assert len(committed) == 318
    assert heldout_stems(stems) == committed


def test_heldout_generator_is_seeded_and_sized() -> None:
    stems = [f"s{i:03d}" for i in range(50)]
    assert heldout_stems(stems) == heldout_stems(list(reversed(stems)))
    assert len(heldout_stems(stems)) == 10
    assert heldout_stems(stems, seed=1) != heldout_stems(stems)


def test_group_split_keeps_groups_together_and_stratifies() -> None:
    labels = ["a"] * 60 + ["b"] * 40
    groups = [f"g{i // 4}" for i in range(100)]  # groups of four, never mixing labels
    train, val = stratified_group_split(labels, groups, 0.25, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    val_groups = {groups[i] for i in val}
    assert not val_groups & {groups[i] for i in train}
    assert 12 <= sum(labels[i] == "a" for i in val) <= 20
    assert 8 <= sum(labels[i] == "b" for i in val) <= 14
    assert (train, val)[1].tolist() == stratified_group_split(labels, groups, 0.25, seed=3)[1].tolist()


def test_random_split_is_the_naive_kind() -> None:
    train, val = random_split(10, 0.2, seed=0)
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)


def _near_copy(image: np.ndarray) -> np.ndarray:
    """Re-encoded at low quality and resized: a near-duplicate, not a byte copy."""
    ok, buf = cv2.imencode(".jpg", cv2.resize(image, (60, 60)), [cv2.IMWRITE_JPEG_QUALITY, 40])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_perceptual_hashes_find_near_copies(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = [rng.integers(0, 255, (8, 8, 3)).astype(np.uint8) for _ in range(4)]
    images = [cv2.resize(b, (96, 96), interpolation=cv2.INTER_CUBIC) for b in base]
    paths = []
    for i, image in enumerate(images + [_near_copy(images[0]), _near_copy(images[2])]):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), image)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    hashes = hash_files(paths + [tmp_path / "broken.png"], cache=tmp_path / "cache.json")
    pairs = {tuple(p) for p in near_duplicate_pairs(hashes, 6).tolist()}
    assert pairs == {(0, 4), (2, 5)}
    groups = duplicate_groups([str(i) for i in range(7)], near_duplicate_pairs(hashes, 6))
    assert groups[0] == groups[4] and groups[2] == groups[5] and len(set(groups)) == 5
    assert (hash_files(paths, cache=tmp_path / "cache.json") == hashes[:6]).all()  # served from the cache


def test_split_keeps_near_copies_on_one_side(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for name, colour in COLOURS.items():
        (tmp_path / name).mkdir()
        for i in range(10):
            image = cv2.resize(square_image(colour, rng, 16), (96, 96), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(tmp_path / name / f"{i}.jpg"), image)
            cv2.imwrite(str(tmp_path / name / f"{i} copy.jpg"), _near_copy(image))
    split = make_split(TrainConfig(roots=[str(tmp_path)], out=str(tmp_path / "out"), seed=5))
    train_stems = {(s.label, s.path.stem.replace(" copy", "")) for s in split.train}
    val_stems = {(s.label, s.path.stem.replace(" copy", "")) for s in split.val}
    assert split.val and not train_stems & val_stems
    assert split.summary["near_duplicate_pairs"] >= 30
    assert {s.label for s in split.val} == set(COLOURS)


def test_crops_of_one_photo_share_a_group(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
    for name in ("a/p1__gt0.jpg", "b/p1__gt1.jpg", "a/p2__gt0.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    groups = {s.path.name: s.group for s in scan_folders([tmp_path])}
    assert groups["p1__gt0.jpg"] == groups["p1__gt1.jpg"] != groups["p2__gt0.jpg"]

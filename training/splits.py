"""Train/validation splits: the fixed ilc2021 held-out photo list and group-aware stratified splits."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.errors import TrainingError

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
ILC2021_VAL = SPLITS_DIR / "ilc2021_val.txt"
HELDOUT_SEED = 2021
HELDOUT_FRACTION = 0.2


def heldout_stems(stems: Sequence[str], seed: int = HELDOUT_SEED, fraction: float = HELDOUT_FRACTION) -> list[str]:
    """The held-out photos of a scene set: a seeded sample of `fraction` of the stems, sorted."""
    ordered = sorted(stems)
    return sorted(random.Random(seed).sample(ordered, round(fraction * len(ordered))))


def read_list(path: str | Path) -> list[str]:
    """Non-empty, non-comment lines of a list file."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read list ({exc.strerror or exc})") from None
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


def write_list(path: str | Path, items: Sequence[str]) -> None:
    """Write one item a line."""
    Path(path).write_text("".join(f"{item}\n" for item in items))


def stratified_group_split(
    labels: Sequence[str], groups: Sequence[str], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that every group lies on one side and each label keeps about `fraction` in val.

    Groups are assigned, in a seeded order, to the validation side of their majority label until that
    label's validation share is reached.
    """
    if not 0 < fraction < 1:
        raise TrainingError(f"validation fraction must be between 0 and 1, got {fraction}")
    labels_arr, groups_arr = np.asarray(labels), np.asarray(groups)
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups_arr):
        members.setdefault(str(g), []).append(i)
    by_label: dict[str, list[str]] = {}
    for g, idx in members.items():
        values, counts = np.unique(labels_arr[idx], return_counts=True)
        by_label.setdefault(str(values[np.argmax(counts)]), []).append(g)
    rng = random.Random(seed)
    val: list[int] = []
    for label in sorted(by_label):
        gs = sorted(by_label[label])
        rng.shuffle(gs)
        target = fraction * sum(len(members[g]) for g in gs)
        taken = 0
        for g in gs:
            if taken >= target:
                break
            val.extend(members[g])
            taken += len(members[g])
    val_mask = np.zeros(len(labels_arr), bool)
    val_mask[val] = True
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A plain random split (the naive, leaky way; kept to measure the leak)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(fraction * n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])

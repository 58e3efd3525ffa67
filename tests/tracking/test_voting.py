"""LabelVote: confidence-weighted track labels that ignore flicker and follow lasting change."""

from __future__ import annotations

import pytest

from shared.voting import LabelVote


def test_single_frame_flicker_never_flips_the_label() -> None:
    vote = LabelVote(switch_margin=1.5)
    labels = [vote.add("without_mask" if i % 7 == 3 else "with_mask", 0.9) for i in range(40)]
    assert set(labels) == {"with_mask"}


def test_a_flicker_on_the_first_frame_is_outvoted_within_a_few_frames() -> None:
    vote = LabelVote(switch_margin=1.5)
    assert vote.add("without_mask", 0.6) == "without_mask"
    labels = [vote.add("with_mask", 0.9) for _ in range(4)]
    assert labels == ["without_mask", "without_mask", "with_mask", "with_mask"]


def test_lasting_change_switches_once_evidence_is_enough() -> None:
    vote = LabelVote(switch_margin=1.5)
    for _ in range(5):
        vote.add("with_mask", 0.8)  # evidence 4.0
    after = [vote.add("mask_incorrect", 0.9) for _ in range(8)]
    # mask_incorrect must lead by more than 1.5: 0.9 * 7 = 6.3 > 4.0 + 1.5 on the 7th frame.
    assert after.index("mask_incorrect") == 6
    assert vote.label == "mask_incorrect" and vote.frames == 13


def test_confidence_weights_the_vote() -> None:
    vote = LabelVote(switch_margin=0.5)
    vote.add("with_mask", 0.95)
    vote.add("with_mask", 0.95)
    for _ in range(3):  # three unsure frames (1.05) do not beat two sure ones (1.9)
        vote.add("without_mask", 0.35)
    assert vote.label == "with_mask"
    assert vote.support("without_mask") == pytest.approx(1.05)


def test_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError):
        LabelVote(switch_margin=-1)

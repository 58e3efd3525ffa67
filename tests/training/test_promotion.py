"""The promote-if-better rule: accuracy and mAP not lower, no class recall down by more than one point."""

from __future__ import annotations

from training.promotion import judge

OLD = {"label accuracy": 0.93, "mAP@0.5": 0.78, "recall with_mask": 0.95, "recall mask_incorrect": 0.90}


def _with(**changes: float) -> dict[str, float]:
    names = {"acc": "label accuracy", "map": "mAP@0.5", "wm": "recall with_mask", "mi": "recall mask_incorrect"}
    return {**OLD, **{names[k]: v for k, v in changes.items()}}


def test_rule_promotes_only_a_model_that_is_not_worse() -> None:
    assert judge("new", "old", _with(acc=0.94, map=0.79), OLD).better
    assert judge("new", "old", dict(OLD), OLD).better  # equal is enough
    assert judge("new", "old", _with(acc=0.95, mi=0.891), OLD).better  # a recall may drop by up to one point
    worse = judge("new", "old", _with(acc=0.95, map=0.80, mi=0.889), OLD)
    assert not worse.better and worse.reasons == ["recall mask_incorrect drops 0.0110 (more than 0.01)"]
    assert judge("new", "old", _with(acc=0.9299), OLD).reasons == ["label accuracy 0.9299 < 0.9300"]
    assert judge("new", "old", _with(map=0.77), OLD).reasons == ["mAP@0.5 0.7700 < 0.7800"]
    missing = {k: v for k, v in _with(acc=0.99).items() if k != "recall with_mask"}
    assert not judge("new", "old", missing, OLD).better  # a class the new model never finds counts as recall 0


def test_comparison_prints_both_versions_and_the_decision() -> None:
    text = judge("cand", "prom", _with(acc=0.92), OLD).format()
    lines = text.splitlines()
    assert lines[0].split() == ["prom", "cand"]
    assert lines[1].split() == ["label", "accuracy", "0.9300", "0.9200"]
    assert lines[-1] == "decision: keep prom (label accuracy 0.9200 < 0.9300)"
    assert judge("cand", "prom", OLD, OLD).format().splitlines()[-1] == "decision: promote"

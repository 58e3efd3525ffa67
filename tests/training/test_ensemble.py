"""`maskwatch models combine`: a classifier version that averages the probabilities of several."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskwatch.cli import main
from shared.classifier import FaceClassifier
from shared.model_store import ModelError, ModelStore
from tests.tiny_classifier import build_tiny_classifier


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    build_tiny_classifier(store, "plain")
    build_tiny_classifier(store, "biased", favour="mask_incorrect")
    return store


def test_combined_version_serves_the_average_of_its_members(store: ModelStore, capsys) -> None:
    assert main(["models", "combine", "plain", "biased", "--name", "both", "--promote",
                 "--models", str(store.root)]) == 0
    assert "average of plain, biased" in capsys.readouterr().out
    assert store.current("classifier") == "both"
    version = store.load("classifier")
    assert version.meta["members"] == ["plain", "biased"]
    assert version.meta["model_files"] == ["members/plain/model.tflite", "members/biased/model.tflite"]
    assert version.meta["labels"] == store.load("classifier", "plain").meta["labels"]
    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    plain, biased = (FaceClassifier.from_version(store.load("classifier", n), threads=1).predict(crops)
                     for n in ("plain", "biased"))
    assert not np.allclose(plain, biased, atol=0.05)
    both = FaceClassifier.from_version(version, threads=1).predict(crops)
    np.testing.assert_allclose(both, (plain + biased) / 2, atol=1e-6)
    card = (version.path / "model_card.md").read_text()
    assert "`plain`" in card and "`biased`" in card and "averaged" in card


def test_combine_refuses_what_cannot_be_averaged(store: ModelStore, capsys) -> None:
    root = str(store.root)
    build_tiny_classifier(store, "two-labels", labels=("a", "b"))
    assert main(["models", "combine", "plain", "two-labels", "--name", "x", "--models", root]) == 2
    assert "differ in labels" in capsys.readouterr().err
    assert main(["models", "combine", "plain", "plain", "--name", "x", "--models", root]) == 2
    assert "at least two different" in capsys.readouterr().err
    assert main(["models", "combine", "plain", "missing", "--name", "x", "--models", root]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["models", "combine", "plain", "biased", "--name", "biased", "--models", root]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(store.versions("classifier")) == ["biased", "plain", "two-labels"]


def test_a_combined_version_missing_a_member_is_refused(store: ModelStore) -> None:
    assert main(["models", "combine", "plain", "biased", "--name", "both", "--models", str(store.root)]) == 0
    (store.kind_dir("classifier") / "both" / "members" / "biased" / "model.tflite").unlink()
    with pytest.raises(ModelError, match="incomplete: members/biased/model.tflite is missing"):
        store.load("classifier", "both")

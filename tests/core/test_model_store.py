"""Model store: versions are checksummed, incomplete or corrupt ones refused, promotion is atomic."""

from __future__ import annotations

import json

import pytest

from shared.model_store import ModelError, ModelStore, ModelWatcher


def make_version(store: ModelStore, name: str, payload: bytes = b"model") -> None:
    folder = store.kind_dir("classifier") / name
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(payload)
    (folder / "metrics.json").write_text("{}")
    store.finalize("classifier", folder, {"model_file": "model.tflite", "labels": ["a", "b"], "input_size": 8})


def test_finalize_load_and_promote(tmp_path) -> None:
    store = ModelStore(tmp_path)
    make_version(store, "v1")
    make_version(store, "v2")
    assert store.versions("classifier") == ["v1", "v2"]
    assert store.current("classifier") is None
    with pytest.raises(ModelError, match="no classifier model promoted"):
        store.load("classifier")
    store.promote("classifier", "v2")
    version = store.load("classifier")
    assert version.name == "v2" and version.meta["labels"] == ["a", "b"]
    assert set(version.meta["files"]) == {"model.tflite", "metrics.json"}
    assert version.file().read_bytes() == b"model"


def test_promote_records_the_version_it_replaces_as_the_rollback_target(tmp_path) -> None:
    store = ModelStore(tmp_path)
    for name in ("v1", "v2", "v3"):
        make_version(store, name)
    store.promote("classifier", "v1")
    assert store.rollback_target("classifier") is None  # nothing was promoted before
    store.promote("classifier", "v2")
    assert (store.current("classifier"), store.rollback_target("classifier")) == ("v2", "v1")
    store.promote("classifier", "v2")  # promoting it again keeps the rollback target
    assert store.rollback_target("classifier") == "v1"
    store.promote("classifier", "v3")
    assert store.rollback_target("classifier") == "v2"
    with pytest.raises(ModelError):
        store.promote("classifier", "missing")
    assert (store.current("classifier"), store.rollback_target("classifier")) == ("v3", "v2")


def test_refuses_corrupt_and_incomplete_versions(tmp_path) -> None:
    store = ModelStore(tmp_path)
    make_version(store, "good")
    (store.kind_dir("classifier") / "good" / "model.tflite").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="corrupt: model.tflite"):
        store.load("classifier", "good")
    half = store.kind_dir("classifier") / "half"
    half.mkdir()
    (half / "model.tflite").write_bytes(b"x")
    with pytest.raises(ModelError, match="incomplete: no meta.json"):
        store.promote("classifier", "half")
    assert store.current("classifier") is None
    make_version(store, "gone")
    (store.kind_dir("classifier") / "gone" / "metrics.json").unlink()
    with pytest.raises(ModelError, match="metrics.json is missing"):
        store.load("classifier", "gone")
    listed = store.kind_dir("classifier") / "listed"
    listed.mkdir()
    (listed / "model.tflite").write_bytes(b"x")
    with pytest.raises(ModelError, match="model file b.tflite is not checksummed"):  # an ensemble member is absent
        store.finalize("classifier", listed, {"model_file": "model.tflite",
                                              "model_files": ["model.tflite", "b.tflite"]})
    (store.kind_dir("classifier") / "gone" / "meta.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        store.load("classifier", "gone")
    with pytest.raises(ModelError, match="not found"):
        store.load("classifier", "nope")
    with pytest.raises(ModelError, match="invalid"):
        store.load("classifier", "../etc")
    with pytest.raises(ModelError, match="unknown model kind"):
        store.versions("weights")


def test_watcher_reports_each_promotion_once(tmp_path) -> None:
    store = ModelStore(tmp_path)
    make_version(store, "v1")
    make_version(store, "v2")
    watcher = ModelWatcher(store, "classifier", interval=1.0)
    assert watcher.changed(0.0) is None
    store.promote("classifier", "v1")
    assert watcher.changed(0.5) is None  # inside the interval: not checked yet
    assert watcher.changed(1.5) == "v1"
    assert watcher.changed(3.0) is None
    store.promote("classifier", "v2")
    assert watcher.changed(4.5) == "v2"


def test_meta_records_checksums(tmp_path) -> None:
    store = ModelStore(tmp_path)
    make_version(store, "v1")
    meta = json.loads((store.kind_dir("classifier") / "v1" / "meta.json").read_text())
    assert meta["kind"] == "classifier" and meta["version"] == "v1"
    assert len(meta["files"]["model.tflite"]) == 64

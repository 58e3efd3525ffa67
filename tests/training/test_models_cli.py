"""`maskwatch models list | show | promote` and refusal of corrupt or incomplete versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maskwatch.cli import main
from shared.model_store import ModelError, ModelStore, ModelWatcher
from tests.tiny_classifier import build_tiny_classifier


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    build_tiny_classifier(store, "20260101-0000-mnv2-32")
    shutil.copytree(store.kind_dir("classifier") / "20260101-0000-mnv2-32",
                    store.kind_dir("classifier") / "20260102-0000-mnv2-32")
    store.promote("classifier", "20260101-0000-mnv2-32")
    return store


def test_list_show_promote(store: ModelStore, capsys) -> None:
    root = str(store.root)
    assert main(["models", "list", "--models", root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("* 20260101-0000-mnv2-32") and lines[1].startswith("  20260102-0000-mnv2-32")
    watcher = ModelWatcher(store, "classifier", interval=0)
    assert watcher.changed(0.0) == "20260101-0000-mnv2-32"
    assert main(["models", "promote", "20260102-0000-mnv2-32", "--models", root]) == 0
    assert store.current("classifier") == "20260102-0000-mnv2-32"
    assert watcher.changed(1.0) == "20260102-0000-mnv2-32"  # services see the switch without a restart
    assert main(["models", "show", "20260102-0000-mnv2-32", "--models", root]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["input_size"] == 32 and "files" not in shown
    assert main(["models", "list", "--kind", "detector", "--models", root]) == 0
    assert "no detector versions" in capsys.readouterr().out


def test_corrupt_and_incomplete_versions_are_refused(store: ModelStore, capsys) -> None:
    root, folder = str(store.root), store.kind_dir("classifier")
    model = folder / "20260102-0000-mnv2-32" / "model.tflite"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    assert main(["models", "promote", "20260102-0000-mnv2-32", "--models", root]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and len(err.strip().splitlines()) == 1
    shutil.copytree(folder / "20260101-0000-mnv2-32", folder / "partial")
    (folder / "partial" / "meta.json").unlink()
    assert main(["models", "promote", "partial", "--models", root]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert store.current("classifier") == "20260101-0000-mnv2-32"  # pointer untouched
    assert main(["models", "list", "--models", root]) == 0
    out = capsys.readouterr().out
    assert "INVALID" in out and "partial" in out
    assert main(["models", "promote", "no-such-version", "--models", root]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(ModelError):
        store.load("classifier", "partial")

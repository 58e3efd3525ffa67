"""Combine classifier versions into one version that serves the average of their probabilities."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from shared.model_store import ModelError, ModelStore, ModelVersion

# What the members must share so that one crop can go through all of them.
SHARED_KEYS = ("labels", "input_size", "preprocessing", "crop_margin")
MEMBER_DOCS = ("model_card.md", "metrics.json")


def _card(name: str, members: Sequence[ModelVersion], description: str) -> str:
    rows = [f"| `{v.name}` | {v.meta.get('val_accuracy') or '- (none)'} | `members/{v.name}/model_card.md` |"
            for v in members]
    return "\n".join([
        f"# Face-mask classifier `{name}`",
        "",
        description,
        "",
        f"An ensemble: every crop goes through the {len(members)} member models below and their class "
        "probabilities are averaged (classification costs the sum of the members' time).",
        "",
        "| member | its own validation accuracy | its card |",
        "|---|---|---|",
        *rows,
        "",
        f"Shared by every member: {', '.join(f'{k} {members[0].meta.get(k)}' for k in SHARED_KEYS)}.",
        "End-to-end numbers on real scenes come from `maskwatch eval <version> --scenes VOC_DIR` "
        "(see docs/training.md).",
        "",
    ])


def combine_versions(store: ModelStore, names: Sequence[str], name: str, description: str = "") -> ModelVersion:
    """Write version `name` whose serving files are those of the versions `names` (at least two)."""
    if len(set(names)) < 2:
        raise ModelError("an ensemble needs at least two different classifier versions")
    members = [store.load("classifier", member) for member in names]
    for other in members[1:]:
        differ = [k for k in SHARED_KEYS if other.meta.get(k) != members[0].meta.get(k)]
        if differ:
            raise ModelError(f"cannot combine {members[0].name} and {other.name}: they differ in {', '.join(differ)}")
    final = store.kind_dir("classifier") / name
    if final.exists():
        raise ModelError(f"classifier version {name!r} already exists in {store.kind_dir('classifier')}")
    staging = final.parent / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    files: list[str] = []
    for member in members:
        folder = staging / "members" / member.name
        folder.mkdir(parents=True)
        for path in member.model_files():
            rel = path.relative_to(member.path)
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, folder / rel)
            files.append(str(Path("members", member.name, rel)))
        for doc in MEMBER_DOCS:
            if (member.path / doc).is_file():
                shutil.copy2(member.path / doc, folder / doc)
    description = description or f"average of {len(members)} MobileNetV2 classifiers: {', '.join(names)}"
    (staging / "model_card.md").write_text(_card(name, members, description))
    meta = {"model_file": files[0], "model_files": files, **{k: members[0].meta.get(k) for k in SHARED_KEYS},
            "architecture": f"ensemble of {len(members)} x {members[0].meta.get('architecture', 'MobileNetV2')}",
            "members": list(names), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "description": description}
    staging.rename(final)
    return store.finalize("classifier", final, meta)

"""Package layout (everything else is in pyproject.toml).

The model store stays at the repository root (models/: the services, docs and tests use it there) and is
mapped into the wheel as the package data folder maskwatch/models, so an installed maskwatch finds the
shipped models from any folder (shared.model_store.default_store_root; `maskwatch models path`).
The wheel ships, of each kind, the promoted version (models/<kind>/CURRENT) and the one to roll back to
(models/<kind>/ROLLBACK, written by `maskwatch models promote`), not every version in the repository.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

CODE = ["maskwatch", "maskwatch.*", "shared", "shared.*", "services", "services.*", "training", "training.*"]
MODELS = Path(__file__).resolve().parent / "models"
DATA = ["*.html", "*.js", "*.css", "*.svg", "*.json", "*.txt", "*.yaml", "*.csv", "*.mako"]  # beside the code
POINTERS = ("CURRENT", "ROLLBACK")  # shared.model_store.POINTER_FILE and ROLLBACK_FILE


def shipped(kind: str) -> list[str]:
    """package_data patterns of one kind: its pointer files and the versions they name."""
    names = {(MODELS / kind / p).read_text().strip() for p in POINTERS if (MODELS / kind / p).is_file()}
    return [p for p in POINTERS if (MODELS / kind / p).is_file()] + [f"{name}/**/*" for name in sorted(names) if name]


setup(
    packages=[*find_namespace_packages(include=CODE), "maskwatch.models", "maskwatch.models.classifier",
              "maskwatch.models.detector"],
    package_dir={"maskwatch.models": "models"},
    package_data={"": DATA, **{f"maskwatch.models.{kind}": shipped(kind) for kind in ("classifier", "detector")}},
)

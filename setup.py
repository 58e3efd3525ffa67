"""Package layout (everything else is in pyproject.toml).

The model store stays at the repository root (models/: the services, docs and tests use it there) and is
mapped into the wheel as the package data folder maskwatch/models, so an installed maskwatch finds the
shipped models from any folder (shared.model_store.default_store_root; `maskwatch models path`).
"""

from setuptools import find_namespace_packages, setup

CODE = ["maskwatch", "maskwatch.*", "shared", "shared.*", "services", "services.*", "training", "training.*"]

setup(
    packages=[*find_namespace_packages(include=CODE), "maskwatch.models", "maskwatch.models.classifier",
              "maskwatch.models.detector"],
    package_dir={"maskwatch.models": "models"},
)

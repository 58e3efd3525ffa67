"""`maskwatch dashboard` refuses bad settings with one line and exit status 2, before serving anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dashboard.conftest import REPO

CASES = [
    ("broken config", ["--config", "{tmp}/bad.yaml"], "not valid YAML"),
    ("missing config", ["--config", "{tmp}/absent.yaml"], "cannot read config"),
    ("bad redis url", ["--redis", "http://localhost:6379"], "must start with redis://"),
    ("zero upload limit", ["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    ("bad port", ["--port", "99999"], "is not a port number"),
]


@pytest.mark.parametrize(("case", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, case: str, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("cameras: [\n")
    argv = [a.format(tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-m", "maskwatch.cli", "dashboard", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if message in line]) == 1

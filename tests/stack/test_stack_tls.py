"""HTTPS for the dashboard wherever it is started: `maskwatch stack up --tls-*` (the dashboard's own options passed
on), $MASKWATCH_TLS_CERT/_KEY (what docker-compose.yml sets from mounted files), and the healthcheck following."""

from __future__ import annotations

import argparse
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from services.dashboard import TLS_CERT_ENV, TLS_KEY_ENV, tls
from services.dashboard.cli import tls_arguments
from services.stack import stack_services
from tests.conftest import REPO
from tests.stack.helpers import free_port, pid_alive, redis_url, wait_for, write_config


def _answers(url: str, ca: Path | None = None) -> bool:
    """Whether the dashboard answers at `url`, an https:// one checked against the certificate `ca`."""
    verify = ssl.create_default_context(cafile=str(ca)) if ca else False
    try:
        return httpx.get(f"{url}/api/v1/health", verify=verify, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _health(url: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (TLS_CERT_ENV, TLS_KEY_ENV)}
    return subprocess.run([sys.executable, "-m", "services.healthcheck", "--url", url], cwd=REPO,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_stack_up_serves_the_dashboard_over_https_with_a_self_signed_certificate(
        tmp_path: Path, stack_db: redis.Redis, services) -> None:
    port = free_port(range(18300, 18400))
    config = write_config(tmp_path / "cams.yaml", redis_url(stack_db), [])
    stack = services.start("stack", "up", "--config", str(config), "--port", str(port), "--tls-self-signed",
                           "--tls-dir", str(tmp_path / "tls"), name="stack")
    cert = tmp_path / "tls" / "dashboard.crt"
    url = f"https://127.0.0.1:{port}"
    wait_for(lambda: cert.is_file() and _answers(url, cert), 90, "the dashboard on HTTPS")
    services.extra_pids.update(int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", services.log(stack)))
    log = services.log(stack)
    assert f"dashboard: https://127.0.0.1:{port}/" in log and "SHA-256 fingerprint" in log
    assert not _answers(f"http://127.0.0.1:{port}")  # HTTPS only
    # the container healthcheck asks http://; with the certificate variable set it asks https:// instead
    assert _health(f"http://127.0.0.1:{port}/api/v1/health", **{TLS_CERT_ENV: str(cert)}).returncode == 0
    assert _health(f"http://127.0.0.1:{port}/api/v1/health").returncode == 1
    children = [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", services.log(stack))]
    assert services.stop(stack, timeout=40) == 0
    assert not [pid for pid in children if pid_alive(pid)]


def test_the_dashboard_reads_its_certificate_from_the_environment_and_empty_means_http(
        tmp_path: Path, stack_db: redis.Redis, services) -> None:
    made = tls.self_signed(tmp_path / "user-tls", ["127.0.0.1"])  # stands for the user's certificate files
    port = free_port(range(18300, 18400))
    services.env.update({TLS_CERT_ENV: str(made.cert), TLS_KEY_ENV: str(made.key)})
    dashboard = services.start("dashboard", "--port", str(port), "--redis", redis_url(stack_db), name="https")
    wait_for(lambda: _answers(f"https://127.0.0.1:{port}", made.cert) or dashboard.poll() is not None, 60,
             "the dashboard on HTTPS")
    assert dashboard.poll() is None, services.log(dashboard)
    assert services.stop(dashboard) == 0
    services.env.update({TLS_CERT_ENV: "", TLS_KEY_ENV: ""})  # docker-compose.yml's default: plain http
    plain = services.start("dashboard", "--port", str(port), "--redis", redis_url(stack_db), name="http")
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}") or plain.poll() is not None, 60,
             "the dashboard on plain HTTP")
    assert plain.poll() is None, services.log(plain)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--tls-cert", "c.pem"], {}, "TLS: --tls-cert and --tls-key go together"),
    (["--tls-cert", "missing.pem", "--tls-key", "missing.key"], {}, "TLS: missing.pem: no such file"),
    (["--tls-self-signed", "--tls-key", "k.pem"], {}, "TLS: use either --tls-self-signed or --tls-cert/--tls-key"),
    ([], {TLS_CERT_ENV: "c.pem"}, f"TLS: ${TLS_CERT_ENV} and ${TLS_KEY_ENV} go together"),
    (["--tls-cert", "text.pem", "--tls-key", "text.pem"], {},
     "TLS: text.pem and text.pem: not a PEM certificate and its private key"),
])
def test_bad_tls_options_are_one_line_before_anything_starts(tmp_path: Path, stack_db: redis.Redis, services,
                                                             args: list[str], env: dict, message: str) -> None:
    config = write_config(tmp_path / "cams.yaml", redis_url(stack_db), [])
    if "text.pem" in args:
        (tmp_path / "text.pem").write_text("not a certificate\n")
        args = [str(tmp_path / a) if a == "text.pem" else a for a in args]
        message = message.replace("text.pem", str(tmp_path / "text.pem"))
    services.env.update(env)
    proc = services.start("stack", "up", "--config", str(config), *args, name="bad")
    assert proc.wait(60) == 2
    assert services.log(proc).strip().splitlines() == [f"error: {message}"]


def test_stack_up_passes_the_options_to_the_dashboard_only(tmp_path: Path) -> None:
    args = argparse.Namespace(tls_cert=Path("c.pem"), tls_key=Path("k.pem"), tls_self_signed=False,
                              tls_dir=Path("ignored"))
    passed = tls_arguments(args)
    assert passed == ("--tls-cert", str(Path("c.pem").resolve()), "--tls-key", str(Path("k.pem").resolve()))
    self_signed = tls_arguments(argparse.Namespace(tls_cert=None, tls_key=None, tls_self_signed=True,
                                                   tls_dir=tmp_path))
    assert self_signed == ("--tls-dir", str(tmp_path), "--tls-self-signed")
    specs = {s.name: s.args for s in stack_services("c.yaml", "0.0.0.0", 8443, dashboard_args=passed)}
    assert specs["dashboard"][-4:] == passed
    assert not any("--tls-cert" in args for name, args in specs.items() if name != "dashboard")

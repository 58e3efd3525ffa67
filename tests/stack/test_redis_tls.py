"""Redis on another host: an ACL user with a password over TLS (a generated CA, client certificates required).

Every service of `stack up` connects that way, with the credentials from the environment and files;
the password is never shown (logs, API, error lines).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from shared import keys
from tests.conftest import REPO
from tests.stack.helpers import REDIS_SERVER, free_port, make_video, wait_for, write_config

PASSWORD = "S3cr3t-Redis-pw"
USER = "maskwatch"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
             "-subj", "/CN=maskwatch test CA", cwd=folder)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=maskwatch {name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=folder)
    return {name: folder / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


@pytest.fixture
def tls_redis(tmp_path: Path):
    """redis-server with TLS only (no plain port), client certificates required, the default user off."""
    if not Path(REDIS_SERVER).exists() or shutil.which("openssl") is None:
        pytest.skip("redis-server or openssl is not installed")
    certs = make_certificates(tmp_path / "tls")
    port = free_port(range(6380, 6390))
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(certs["server.crt"]), "--tls-key-file", str(certs["server.key"]),
         "--tls-ca-cert-file", str(certs["ca.crt"]), "--tls-auth-clients", "yes",
         "--user", "default", "off", "--user", USER, "on", f">{PASSWORD}", "~maskwatch:*", "&*", "+@all",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, ssl=True, ssl_ca_certs=str(certs["ca.crt"]), ssl_certfile=str(certs["client.crt"]),
                         ssl_keyfile=str(certs["client.key"]), username=USER, password=PASSWORD, socket_timeout=2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for(answers, 15, "the TLS redis-server")
        yield port, certs, client
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
def test_every_service_over_tls_with_an_acl_user(tmp_path: Path, tls_redis, services) -> None:
    port, certs, client = tls_redis
    password_file = tmp_path / "redis-password"
    password_file.write_text(PASSWORD + "\n")
    video = make_video(tmp_path / "v.avi", frames=30, fps=20)
    url = f"rediss://127.0.0.1:{port}/0"
    dash_port = free_port(range(18700, 18800))
    config = write_config(tmp_path / "cams.yaml", url, [{"id": "tls-cam", "url": str(video), "fps": 5, "loop": True}],
                          redis={"username": USER, "tls_ca_file": str(certs["ca.crt"])})
    services.env.update({"MASKWATCH_REDIS_PASSWORD_FILE": str(password_file),
                         "MASKWATCH_REDIS_CERT_FILE": str(certs["client.crt"]),
                         "MASKWATCH_REDIS_KEY_FILE": str(certs["client.key"])})
    stack = services.start("stack", "up", "--config", str(config), "--port", str(dash_port), name="stack")
    wait_for(lambda: client.get(keys.latest_result("tls-cam")), 120, "a result over TLS")

    def cameras() -> list | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{dash_port}/api/v1/cameras", timeout=3)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 and response.json() else None

    listed = wait_for(cameras, 60, "the dashboard to read Redis over TLS")
    assert listed[0]["id"] == "tls-cam" and listed[0]["status"] == "live"
    health = httpx.get(f"http://127.0.0.1:{dash_port}/api/v1/health", timeout=3).json()
    assert health["redis"] is True
    clients = client.client_list()
    assert {c["user"] for c in clients} == {USER}
    names = {c["name"] for c in clients}
    assert any(n.startswith("capture:") for n in names) and any(n.startswith("detector:") for n in names), names
    assert services.stop(stack, timeout=60) == 0
    assert PASSWORD not in services.log(stack)
    assert "Traceback" not in services.log(stack)

    # a wrong password is one error line that does not show it either
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    env = {**services.env, "MASKWATCH_REDIS_PASSWORD_FILE": str(wrong)}
    status = subprocess.run([sys.executable, "-m", "maskwatch.cli", "stack", "status", "--config", str(config)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 1
    assert status.stderr.startswith(f"error: cannot reach Redis at rediss://127.0.0.1:{port}/0 (")
    assert "not-the-password" not in status.stderr and len(status.stderr.strip().splitlines()) == 1


def test_a_missing_certificate_file_is_one_line(tmp_path: Path, services) -> None:
    config = write_config(tmp_path / "cams.yaml", "rediss://127.0.0.1:1/0", [],
                          redis={"tls_ca_file": str(tmp_path / "nope.crt")})
    status = subprocess.run([sys.executable, "-m", "maskwatch.cli", "stack", "status", "--config", str(config)],
                            cwd=REPO, env=services.env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 2
    assert status.stderr.strip() == f"error: redis ca file {tmp_path / 'nope.crt'}: no such file"

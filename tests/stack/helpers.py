"""Helpers for the streaming-stack tests: polling, private redis-servers, service processes, videos."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from tests.conftest import REPO

REDIS_SERVER = "/usr/bin/redis-server"
PRIVATE_PORTS = range(6390, 6400)


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def redis_url(client: redis.Redis) -> str:
    """The URL of a test client's server and database."""
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw.get('host', '127.0.0.1')}:{kw['port']}/{kw.get('db', 0)}"


class PrivateRedis:
    """A redis-server of our own (append-only file with fsync always, unless not `persistent`) to kill and restart."""

    def __init__(self, port: int, folder: Path, persistent: bool = True) -> None:
        self.port, self.folder, self.persistent = port, folder, persistent
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        """Start (or restart) the server on the same port and data folder and wait until it answers."""
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             *aof, "--save", "", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        wait_for(lambda: _pings(client), 10, f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server (an outage, not a clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        """A client for database 0."""
        return redis.Redis(port=self.port, socket_timeout=5)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port(candidates: range) -> int:
    """The first port of `candidates` nobody listens on (skips the test when all are taken)."""
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {candidates}")


class Services:
    """Starts `maskwatch` subprocesses with logs in files; every one is stopped at teardown."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self._files: list = []
        self.extra_pids: set[int] = set()  # grandchildren (e.g. started by `stack up`) to kill at the end

    def start(self, *args: str, name: str) -> subprocess.Popen:
        """Run `maskwatch ARGS` in the background."""
        log = self.folder / f"{name}-{len(self.procs)}.log"
        out = log.open("wb")
        self._files.append(out)
        proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", *args], cwd=REPO, env=self.env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def log(self, proc: subprocess.Popen) -> str:
        """Everything a process has written so far."""
        return next(path for p, path in self.procs if p is proc).read_text(errors="replace")

    def stop(self, proc: subprocess.Popen, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit code (the test fails if it does not stop in time)."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pid {proc.pid} ignored SIGTERM for {timeout}s:\n{self.log(proc)[-2000:]}")

    def close(self) -> None:
        """Kill the whole process group of anything still running, and every pid in `extra_pids`."""
        for pid in self.extra_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc, _log in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        for out in self._files:
            out.close()


def make_video(path: Path, frames: int, fps: float = 20.0, size: tuple[int, int] = (160, 120)) -> Path:
    """Write an MJPG .avi whose frame i shows the number i (gray level i*8 % 256) and a moving square."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(frames):
        image = np.full((h, w, 3), (i * 8) % 256, np.uint8)
        cv2.rectangle(image, (i % (w - 20), 10), (i % (w - 20) + 20, 30), (0, 0, 255), -1)
        cv2.putText(image, str(i), (10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        writer.write(image)
    writer.release()
    return path


def write_config(path: Path, url: str, cameras: list[dict], **sections: dict) -> Path:
    """Write a cameras.yaml for tests."""
    import yaml

    path.write_text(yaml.safe_dump({"redis_url": url, "cameras": cameras, **sections}, sort_keys=False))
    return path


def fields_text(client: redis.Redis, key: str) -> dict[str, str]:
    """A hash as str -> str."""
    return {k.decode(): v.decode() for k, v in client.hgetall(key).items()}


class SilentServer:
    """A TCP server that accepts every connection and never answers (a camera hung in its handshake)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)


def thread_count(pid: int) -> int:
    """Threads of a running process (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def child_pids(pid: int) -> set[int]:
    """The direct children of a running process (Linux)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            continue
    return found

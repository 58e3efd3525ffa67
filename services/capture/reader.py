"""One camera's reader: an `ffmpeg` child process, its deadlines, and the status it earns.

Public API:
- `Reader(camera, options)`: `.spawn(now)`, `.kill()`, `.feed(data, now) -> list[bytes]`, `.stderr(data)`,
  `.exited(now)` (decide what the end of the process means), `.check(now)` (kill it when a deadline passed),
  `.starting`, `.state` ((status, error), set as one value), `.status`, `.error`, `.changed` (since the state was
  last written), `.proc`, `.restart_at`, `.finished`.

The reader never blocks the caller: the process is started without waiting for the camera, its pipes
are read by `ReaderLoop` when they have data, and a camera that does not answer within `open_timeout`
(or stops sending for `read_timeout`) is killed and started again with backoff.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
from collections import deque
from pathlib import Path

import numpy as np

from services.capture.ffmpeg import FFMPEG, reader_command
from services.capture.frames import BadStream, Y4mSplitter
from shared.config import CameraConfig, CaptureConfig, is_file_source
from shared.redaction import redact_text
from shared.schemas import CameraStatus
from shared.sources import redact_url
from shared.streams import Backoff

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 32 * 1024 * 1024  # one raw frame of max_side is far smaller (1920x1080: 3 MiB)
PIPE_BYTES = 1 << 20  # the stdout pipe holds a whole raw frame: one wake-up a frame, not one per 64 KiB
# util-linux's setpriv sets PDEATHSIG and execs ffmpeg: a reader dies with capture, even by SIGKILL. (Not a
# preexec_fn: forking a threaded process that runs Python in the child can deadlock before the exec.)
SETPRIV = shutil.which("setpriv")


def _command(argv: list[str]) -> list[str]:
    """The reader's argv, under setpriv --pdeathsig KILL when it is there."""
    return [SETPRIV, "--pdeathsig", "KILL", "--", *argv] if SETPRIV else argv


class Reader:
    """The reader process of one camera and its status."""

    def __init__(self, camera: CameraConfig, options: CaptureConfig) -> None:
        self.camera, self.options = camera, options
        self.name = redact_url(camera.url)
        self.is_file = is_file_source(camera.url)
        self.state: tuple[str, str] = (CameraStatus.RETRYING, "")  # (status, error): one value, read whole by
        self.changed = True  # the service's thread; changed since the state hash was last written
        self.proc: subprocess.Popen | None = None
        self.restart_at = 0.0
        self.finished = False  # a file that ended (no loop): not started again
        self.backoff = Backoff(base=0.5, cap=options.reconnect_max)
        self._splitter = Y4mSplitter(MAX_FRAME_BYTES)
        self._stderr: deque[str] = deque(maxlen=4)
        self._partial = b""
        self._frames = 0
        self._deadline = 0.0
        self._killed_for = ""

    @property
    def starting(self) -> bool:
        """Running, but no frame yet (probing the source)."""
        return self.proc is not None and self._frames == 0

    @property
    def read_timeout(self) -> float:
        """Longest silence between two frames of a running camera (at least three frame periods)."""
        return max(self.options.read_timeout, 3.0 / self.camera.fps)

    def spawn(self, now: float) -> None:
        """Start the reader process (does not wait for the camera); sets a failed status when it cannot."""
        self._splitter = Y4mSplitter(MAX_FRAME_BYTES)
        self._stderr.clear()
        self._partial, self._frames, self._killed_for = b"", 0, ""
        if self.is_file and not Path(self.camera.url).is_file():
            problem = "not a regular video file" if Path(self.camera.url).exists() else "no such video file"
            self._failed(f"{self.name}: {problem}", now)
            return
        try:
            self.proc = subprocess.Popen(_command(reader_command(self.camera, self.options)),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         close_fds=True, start_new_session=True)
        except OSError as exc:
            self._failed(f"cannot start {FFMPEG} ({exc.strerror or exc}): is ffmpeg installed?", now)
            return
        try:
            fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # over /proc/sys/fs/pipe-max-size: the default 64 KiB works too, with more wake-ups
            pass
        self._deadline = now + self.options.open_timeout

    def kill(self) -> None:
        """SIGKILL the process (it is reaped by `exited`, or by whoever waits for it)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def feed(self, data: bytes, now: float) -> list[np.ndarray]:
        """Bytes from stdout; returns the whole frames completed, I420 (a first one makes the camera live)."""
        try:
            images = self._splitter.feed(data)
        except BadStream as exc:
            self._kill_for(f"{self.name}: {exc}")
            return []
        if images:
            self._frames += len(images)
            self._deadline = now + self.read_timeout
            if self.status != CameraStatus.LIVE:
                self._set(CameraStatus.LIVE, "")
                self.backoff.reset()
        return images

    def stderr(self, data: bytes) -> None:
        """Bytes from stderr: the last lines explain a failure."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-1000:]
        for line in lines:
            text = " ".join(line.decode(errors="replace").split())
            if text:
                self._stderr.append(text[:300])

    def check(self, now: float) -> None:
        """Kill a running process that missed its open or read deadline."""
        if self.proc is None or self._killed_for or now < self._deadline:
            return
        if self._frames:
            self._kill_for(f"{self.name}: stream stopped answering (no frame for {self.read_timeout:g}s)")
        else:
            self._kill_for(f"{self.name}: cannot open: no frame within {self.options.open_timeout:g}s "
                           "(unreachable or not answering)")

    def exited(self, now: float) -> None:
        """The process has ended (pipes closed): set the status and when to start again."""
        code = self.proc.wait() if self.proc is not None else None
        self.proc = None
        if self._partial:
            self.stderr(b"\n")
        why = self._stderr[-1] if self._stderr else ""
        if self._killed_for:
            self._retry(self._killed_for, now)
        elif self._frames == 0:
            self._retry(f"{self.name}: cannot open or decode: {redact_text(why) or f'ffmpeg exit code {code}'}", now)
        elif self.is_file and not self.camera.loop and code == 0:
            self.finished = True
            self._set(CameraStatus.STOPPED, "")
        else:
            detail = f": {redact_text(why)}" if why else ""
            self._retry(f"{self.name}: stream ended or stopped answering{detail}", now)

    def _kill_for(self, reason: str) -> None:
        self._killed_for = reason
        self.kill()

    def _retry(self, error: str, now: float) -> None:
        self._set(CameraStatus.FAILED if self.is_file else CameraStatus.RETRYING, error)
        self.restart_at = now + self.backoff.delay()

    def _failed(self, error: str, now: float) -> None:
        self._set(CameraStatus.FAILED, error)
        self.restart_at = now + self.backoff.delay()

    @property
    def status(self) -> str:
        """The camera's status (CameraStatus)."""
        return self.state[0]

    @property
    def error(self) -> str:
        """Why the camera is not live ("" when it is)."""
        return self.state[1]

    def _set(self, status: str, error: str) -> None:
        error = redact_text(error)  # messages name the source: never with its credentials
        if (status, error) == self.state:
            return
        self.state = (status, error)  # one assignment: never a new status with the old error
        self.changed = True
        if error:
            log.warning("camera %s: %s: %s", self.camera.id, status, error)
        else:
            log.info("camera %s: %s", self.camera.id, status)

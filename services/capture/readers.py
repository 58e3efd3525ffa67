"""Every camera reader of a capture process on one thread: epoll over their pipes, deadlines, restarts.

Public API:
- `ReaderLoop(sink)`: `.start()`, `.set_cameras(cameras, options)` (returns at once; the loop adds,
  restarts (not for zone or line edits) and removes readers), `.statuses(only_changed) -> {id: (status,
  error)}`, `.running`, `.stop(timeout)` (kills every reader).

One thread serves any number of cameras: nothing it does waits for a camera (pipes are read when epoll
says they have data, processes are started without waiting for them and reaped when they have exited),
so a camera that hangs, stalls or floods only ever affects its own ffmpeg process.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import threading
import time
from collections.abc import Callable
from subprocess import Popen

from services.capture.frames import SampledFrame
from services.capture.reader import PIPE_BYTES, Reader
from shared.config import CameraConfig, CaptureConfig

log = logging.getLogger(__name__)

TICK_S = 0.1  # deadlines and restarts are checked this often
SPAWNS_PER_TICK = 25  # readers started per tick at most: thousands of cameras start gradually
# readers probing their source at once at most: starting costs CPU, and a start-up storm would make them miss
# their open_timeout, be killed and start again, over and over
MAX_STARTING = 32
READ_BYTES = PIPE_BYTES  # as much as a reader's pipe holds
Sink = Callable[[SampledFrame], None]


class ReaderLoop:
    """Runs the readers of many cameras on one thread."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.readers: dict[str, Reader] = {}
        self._selector = selectors.DefaultSelector()
        self._commands: queue.SimpleQueue[tuple[dict[str, CameraConfig], CaptureConfig]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._open: dict[Reader, int] = {}  # pipes still open per running reader
        self._ending: set[Reader] = set()  # pipes closed, waiting for the process to exit
        self._dying: list[Popen] = []  # removed readers' processes, killed, not reaped yet
        self._lock = threading.Lock()  # the readers dict, between the loop and statuses()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-readers", daemon=True)

    def start(self) -> None:
        """Start the loop thread."""
        self._thread.start()

    def set_cameras(self, cameras: dict[str, CameraConfig], options: CaptureConfig) -> None:
        """Run exactly `cameras` (a changed camera or changed options restart its reader); returns at once."""
        self._commands.put((dict(cameras), options))
        self._wake()

    def statuses(self, only_changed: bool = False) -> dict[str, tuple[str, str]]:
        """(status, error) of the cameras (only those changed since the last call with only_changed)."""
        with self._lock:
            readers = list(self.readers.values())
        found = {}
        for reader in readers:
            if reader.changed or not only_changed:
                reader.changed = False  # first: a change made while we read is written next time, never lost
                found[reader.camera.id] = reader.state
        return found

    @property
    def running(self) -> bool:
        """True while the loop thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Kill every reader and stop the loop thread (within about `timeout` seconds)."""
        self._stopping.set()
        self._wake()
        self._thread.join(timeout)

    # -- the loop thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        next_tick = 0.0
        try:
            while not self._stopping.is_set():
                for key, _mask in self._selector.select(timeout=max(0.0, next_tick - time.monotonic())):
                    if key.data is None:
                        self._drain_wake()
                    else:
                        self._read(*key.data)
                self._apply_commands()
                if time.monotonic() >= next_tick:
                    self._tick(time.monotonic())
                    next_tick = time.monotonic() + TICK_S
        finally:
            self._shutdown()

    def _read(self, reader: Reader, which: str) -> None:
        if reader.proc is None:
            return  # removed earlier in this batch of events
        pipe = reader.proc.stdout if which == "out" else reader.proc.stderr
        if pipe.closed:
            return
        try:
            data = os.read(pipe.fileno(), READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(reader, pipe)
            return
        if which == "err":
            reader.stderr(data)
            return
        now = time.monotonic()
        for yuv in reader.feed(data, now):
            self.sink(SampledFrame(reader.camera.id, yuv, time.time(), reader.options.jpeg_quality))

    def _close(self, reader: Reader, pipe) -> None:
        self._selector.unregister(pipe)
        pipe.close()
        self._open[reader] -= 1
        if self._open[reader] == 0:
            del self._open[reader]
            self._ending.add(reader)
            self._reap(time.monotonic())

    def _tick(self, now: float) -> None:
        self._reap(now)
        self._dying = [proc for proc in self._dying if proc.poll() is None]
        readers = list(self.readers.values())
        starting = sum(1 for reader in readers if reader.starting)
        spawned = 0
        for reader in readers:
            if reader.proc is not None:
                reader.check(now)
            elif (not reader.finished and reader.restart_at <= now and spawned < SPAWNS_PER_TICK
                  and starting < MAX_STARTING):
                self._spawn(reader, now)
                spawned += 1
                starting += reader.starting

    def _spawn(self, reader: Reader, now: float) -> None:
        reader.spawn(now)
        if reader.proc is None:
            return
        for which, pipe in (("out", reader.proc.stdout), ("err", reader.proc.stderr)):
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe, selectors.EVENT_READ, (reader, which))
        self._open[reader] = 2

    def _reap(self, now: float) -> None:
        for reader in list(self._ending):
            if reader.proc is None or reader.proc.poll() is not None:
                self._ending.discard(reader)
                if self.readers.get(reader.camera.id) is reader:
                    reader.exited(now)

    def _apply_commands(self) -> None:
        latest = None
        while True:
            try:
                latest = self._commands.get_nowait()
            except queue.Empty:
                break
        if latest is None:
            return
        cameras, options = latest
        now = time.monotonic()
        for cam_id, reader in list(self.readers.items()):
            camera = cameras.get(cam_id)
            # zones and lines are not the reader's business: editing them restarts nothing
            if camera is None or camera.without_geometry() != reader.camera.without_geometry() \
                    or reader.options != options:
                self._remove(reader)
        with self._lock:
            for cam_id, camera in cameras.items():
                if cam_id not in self.readers:
                    self.readers[cam_id] = Reader(camera, options)
                    self.readers[cam_id].restart_at = now

    def _remove(self, reader: Reader) -> None:
        with self._lock:
            del self.readers[reader.camera.id]
        self._ending.discard(reader)
        if reader.proc is None:
            return
        reader.kill()
        for pipe in (reader.proc.stdout, reader.proc.stderr):
            if not pipe.closed:
                self._selector.unregister(pipe)
                pipe.close()
        self._open.pop(reader, None)
        self._dying.append(reader.proc)
        reader.proc = None

    def _shutdown(self) -> None:
        for reader in list(self.readers.values()):
            self._remove(reader)
        deadline = time.monotonic() + 2.0
        while self._dying and time.monotonic() < deadline:
            self._dying = [proc for proc in self._dying if proc.poll() is None]
            time.sleep(0.01)
        if self._dying:
            log.warning("capture: %d reader process(es) did not exit after SIGKILL", len(self._dying))

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # already woken

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

"""`maskwatch stack up`: runs capture, detector workers, the tracker, the recorder and the dashboard as supervised
processes.

`--workers N` scales detection only: one tracker owns every camera's per-camera state (tracks, votes,
person records, alerts), so people are counted once whatever N is.

Each service is an ordinary `maskwatch <service>` process (the same commands docker-compose.yml runs).
A service that dies is restarted with backoff; SIGTERM/SIGINT stops them stage by stage (capture, then
detectors, trackers, dashboard: SIGTERM, then SIGKILL after a grace period), so every frame captured is
answered and counted before the next stage stops.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.exit_codes import USAGE
from shared.file_watch import FileWatch
from shared.streams import Backoff

log = logging.getLogger(__name__)

STABLE_AFTER_S = 30.0  # a service that ran this long restarts quickly again after a crash
USAGE_RETRY_S = 300.0  # a service that cannot start as configured (exit 2) waits for a config edit, or this long
GRACE_S = 15.0
PR_SET_PDEATHSIG = 1


# Shutdown runs stage by stage, upstream first: capture stops producing frames, the detectors answer
# what is waiting, the trackers publish what the detectors sent, and the dashboard counts it all last.
STOP_ORDER: tuple[str, ...] = ("capture", "detector", "tracker", "recorder", "dashboard", "mqtt")


@dataclass(frozen=True)
class ServiceSpec:
    """One process of the stack: a name for the logs and its `maskwatch` arguments."""

    name: str
    args: tuple[str, ...]

    @property
    def stage(self) -> str:
        """The pipeline stage (the subcommand): services stop in `STOP_ORDER`, unknown stages last."""
        return self.args[0]


def stack_services(config: str | Path, host: str, port: int, workers: int = 1, dashboard: bool = True,
                   mqtt: bool = False, recorder: bool = True,
                   dashboard_args: tuple[str, ...] = ()) -> list[ServiceSpec]:
    """The processes `stack up` runs (docker-compose.yml runs the same commands, one per service);
    `dashboard_args`: more options of the dashboard (HTTPS)."""
    config = str(config)
    specs = [ServiceSpec("capture", ("capture", "--config", config))]
    specs += [ServiceSpec(f"detector-{i + 1}", ("detector", "--config", config)) for i in range(workers)]
    specs.append(ServiceSpec("tracker", ("tracker", "--config", config)))
    if recorder:  # the history database (issue 25): people, crossings, alerts, counts
        specs.append(ServiceSpec("recorder", ("recorder", "--config", config)))
    if dashboard:
        specs.append(ServiceSpec("dashboard", ("dashboard", "--host", host, "--port", str(port), "--config", config,
                                               *dashboard_args)))
    if mqtt:  # the config has an mqtt: section
        specs.append(ServiceSpec("mqtt", ("mqtt", "--config", config)))
    return specs


@dataclass
class Child:
    """A supervised service process."""

    spec: ServiceSpec
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restart_at: float = 0.0
    config_watch: FileWatch | None = None  # set after an exit 2: restart when the config file changes
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=30.0))

    @property
    def config_path(self) -> str | None:
        """The service's --config file."""
        args = self.spec.args
        return args[args.index("--config") + 1] if "--config" in args[:-1] else None

    def start(self) -> None:
        """Start (or restart) the process in its own session, so terminal signals reach only the launcher."""
        argv = [sys.executable, "-m", "maskwatch.cli", *self.spec.args]
        self.proc = subprocess.Popen(argv, start_new_session=True,
                                     preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self.started = time.monotonic()
        log.info("stack: started %s (pid %d): maskwatch %s", self.spec.name, self.proc.pid, " ".join(self.spec.args))


class Stack:
    """Starts the services, restarts those that die, and stops them all on request."""

    def __init__(self, specs: list[ServiceSpec]) -> None:
        self.children = [Child(spec) for spec in specs]

    def run(self, stop: threading.Event) -> int:
        """Supervise until `stop` is set; returns 0 after a clean shutdown."""
        for child in self.children:
            child.start()
        while not stop.wait(0.5):
            self._supervise()
        self.shutdown()
        return 0

    def _supervise(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.proc is None:
                if now >= child.restart_at or (child.config_watch is not None and child.config_watch.changed()):
                    child.config_watch = None
                    child.start()
                continue
            code = child.proc.poll()
            if code is None:
                continue
            if now - child.started > STABLE_AFTER_S:
                child.backoff.reset()
            if code == USAGE:  # a bad config (or no usable model): restarting changes nothing until it is fixed
                child.proc, child.restart_at = None, now + USAGE_RETRY_S
                child.config_watch = FileWatch(child.config_path) if child.config_path else None
                log.error("stack: %s cannot start as configured (exit %d, its error is above); starting it again "
                          "when %s changes", child.spec.name, code, child.config_path)
                continue
            wait = child.backoff.delay()
            log.error("stack: %s exited with code %d; restarting in %.0fs", child.spec.name, code, wait)
            child.proc, child.restart_at = None, now + wait

    def shutdown(self, grace: float = GRACE_S) -> None:
        """Stop the stages in `STOP_ORDER`: SIGTERM a stage's services, wait up to `grace` s, SIGKILL what is left."""
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        log.info("stack: stopping %d service(s), stage by stage", len(running))
        for stage in stop_stages([c.spec for c in running]):
            procs = [c.proc for c in running if c.spec.stage == stage]
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for proc in procs:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("stack: pid %d (%s) did not stop within %.0fs; killing it", proc.pid, stage, grace)
                    proc.kill()
                    proc.wait()
            log.info("stack: %s stopped", stage)


def stop_stages(specs: list[ServiceSpec]) -> list[str]:
    """The stages of `specs` in the order they stop."""
    stages = list(dict.fromkeys(spec.stage for spec in specs))
    return sorted(stages, key=lambda s: STOP_ORDER.index(s) if s in STOP_ORDER else len(STOP_ORDER))


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the launcher dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass

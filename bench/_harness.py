"""What the benchmarks share: a `modelctl-server` subprocess, stopping process trees, percentiles.

Not a benchmark itself (the leading underscore keeps run_all.py from running it).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

READY = re.compile(r"^modelctl-server listening on (?P<address>\S+)")


class BenchError(RuntimeError):
    pass


def stop_tree(proc: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """SIGTERM a process and every process it started (MLflow's CLI starts uvicorn, which starts workers)."""
    try:
        family = [psutil.Process(proc.pid)]
        family += family[0].children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ModelctlServer:
    """`modelctl-server` in a subprocess: SQLite in `data_dir`, gRPC and metrics on free ports."""

    def __init__(self, data_dir: Path, token: str, log_path: Path, *, start_timeout: float = 30.0,
                 settings: dict[str, str] | None = None) -> None:
        """`settings`: MODELCTL_* variables a benchmark needs on top of these defaults."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
        env.update({
            "MODELCTL_SERVER_GRPC_ADDRESS": "127.0.0.1:0",
            "MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:0",
            "MODELCTL_SERVER_DATA_DIR": str(data_dir),
            "MODELCTL_SERVER_SHUTDOWN_GRACE": "2s",
            "MODELCTL_ADMIN_TOKEN": token,
            "PYTHONUNBUFFERED": "1",
            **(settings or {}),
        })
        self.log_path = log_path
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "modelctl_server", "--log-level", "WARNING"],
                                     stdout=subprocess.PIPE, stderr=self._log, env=env, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self.address = self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise
        #: Seconds from spawning the process to its ready line.
        self.startup = time.monotonic() - started

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"modelctl-server not ready in {timeout:g} s:\n{self.log()}") from None
            if line is None:
                raise BenchError(f"modelctl-server exited ({self.proc.wait()}):\n{self.log()}")
            m = READY.match(line.strip())
            if m:
                return m["address"]

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if not self._log.closed:
            stop_tree(self.proc)
            self._log.close()


class BareServer:
    """A baseline server in a subprocess: `argv` prints `listening on ADDRESS` once it serves (127.0.0.1)."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise BenchError(f"{name} did not start: {line!r}")
        self.address = line.removeprefix("listening on ")

    def stop(self) -> None:
        stop_tree(self.proc, grace=10)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]

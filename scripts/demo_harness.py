"""What `scripts/demo.py` stands on: a throwaway workspace, the server process, the CLI, a webhook receiver.

Everything here is made to be taken down again: `Workspace.close` stops what it
started (in reverse order) and deletes the temporary directory, whether the demo
ended, failed or was interrupted.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")
BIN = Path(sys.executable).parent  # the venv's bin/: modelctl and modelctl-server live next to python


class StepFailed(Exception):
    """A step did not behave as expected; the message says what was expected and what happened."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, pace: float = 0.2) -> T:
    """Call `probe` until it returns something truthy; StepFailed naming `what` after `timeout` seconds.

    For conditions the controller offers no stream for (a drift verdict, an experiment's
    significance); everything that has a stream is waited on through it.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(pace)  # polling pace, not a wait for a result


class Style:
    """ANSI styles when stdout is a terminal, plain text otherwise (tests, logs)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


class Workspace:
    """A temporary directory plus every process and thread-owning object started for the demo."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="modelctl-demo-"))
        self._closers: list[tuple[str, Callable[[], None]]] = []

    def on_close(self, name: str, fn: Callable[[], None]) -> None:
        self._closers.append((name, fn))

    def close(self, keep_files: bool = False) -> list[str]:
        """Stop everything (newest first) and remove the directory; returns what failed to stop."""
        problems: list[str] = []
        while self._closers:
            name, fn = self._closers.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up whatever one closer does
                problems.append(f"{name}: {exc}")
        if not keep_files:
            shutil.rmtree(self.path, ignore_errors=True)
        return problems


class ServerProcess:
    """`modelctl-server --config FILE` in its own session, so only the demo decides when it stops."""

    def __init__(self, workspace: Workspace, config: str) -> None:
        self.data_dir = workspace.path / "data"
        self.config_file = workspace.path / "modelctl.toml"
        self.config_file.write_text(config)
        self.stdout_path = workspace.path / "server.out"
        self.log_path = workspace.path / "server.log"
        self.address = ""
        self.metrics_port = 0
        with open(self.stdout_path, "wb") as out, open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen([str(BIN / "modelctl-server"), "--config", str(self.config_file)],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=workspace.path)
        workspace.on_close("modelctl-server", self.stop)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_listening(self, timeout: float = 60.0) -> None:
        pattern = re.compile(r"listening on (\S+) \(metrics on port (\d+)\)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.stdout_path.read_text())
            if found:
                self.address, self.metrics_port = found.group(1), int(found.group(2))
                return
            if self.proc.poll() is not None:
                raise StepFailed(f"modelctl-server exited with {self.proc.returncode}: {self.log_tail()}")
            time.sleep(0.05)  # the server writes one line when it listens; nothing to subscribe to
        raise StepFailed(f"modelctl-server did not listen within {timeout:g}s: {self.log_tail()}")

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (health NOT_SERVING, streams end, in-flight calls drain); SIGKILL if it hangs."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Cli:
    """Runs the real `modelctl` command line, printing `$ modelctl ...` and what it printed."""

    def __init__(self, env: dict[str, str], style: Style, cwd: Path) -> None:
        self.env = env
        self.style = style
        self.cwd = cwd
        self._current: subprocess.Popen[str] | None = None

    def run(self, *args: str, expect: int | None = 0, live: bool = False, show: bool = True,
            timeout: float = 120.0) -> tuple[int, str]:
        """Run `modelctl ARGS`; returns (exit code, stdout). `live` hands it the terminal (progress lines).

        `expect` is the exit code the step needs (None: any); anything else fails the step.
        """
        if show:
            print(self.style.cyan("$ modelctl " + shlex.join(args)), flush=True)
        out_target = None if live else subprocess.PIPE
        proc = subprocess.Popen([str(BIN / "modelctl"), *args], env=self.env, cwd=self.cwd, text=True,
                                stdout=out_target, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self._current = proc
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end(proc)
            raise StepFailed(f"`modelctl {shlex.join(args)}` did not finish within {timeout:g}s") from None
        except BaseException:  # Ctrl-C while it runs: it must not outlive the demo
            _end(proc)
            raise
        finally:
            self._current = None
        code = proc.returncode
        stdout = stdout or ""
        if show and stdout:
            print(stdout.rstrip("\n"), flush=True)
        if stderr.strip():
            print(self.style.dim(stderr.rstrip("\n")), flush=True)
        if expect is not None and code != expect:
            raise StepFailed(f"`modelctl {shlex.join(args)}` exited {code}, expected {expect}: "
                             f"{stderr.strip() or stdout.strip()[-300:]}")
        return code, stdout

    def json(self, *args: str, show: bool = False) -> Any:
        _, out = self.run("-o", "json", *args, show=show)
        return json.loads(out)

    def stop(self) -> None:
        """Ends a command still running (the demo is stopping while it runs)."""
        if self._current is not None:
            _end(self._current)


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class WebhookReceiver:
    """A local HTTP endpoint standing in for Slack or PagerDuty: records what Apprise's json:// posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the base class's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    post = json.loads(body or b"{}")
                except ValueError:
                    post = {"raw": body.decode(errors="replace")}
                with outer._changed:
                    outer.posts.append({"received": time.time(), "path": self.path, **post})
                    outer._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/modelctl-alerts"

    def wait_post(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        with self._changed:
            found: list[dict[str, Any]] = []

            def match() -> bool:
                found[:] = [p for p in self.posts if predicate(p)]
                return bool(found)

            return found[0] if self._changed.wait_for(match, timeout) else None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def shell_env(address: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
    env.update({"MODELCTL_ADDR": address, "MODELCTL_TOKEN": token, "COLUMNS": env.get("COLUMNS", "120")})
    return env

"""`make demo` is part of the suite: the demo program runs in fast mode and its own checks must pass.

The demo (`scripts/demo.py`) starts a real `modelctl-server` process, a simulated
fleet and a pipeline agent, runs the real CLI through ten steps and checks each
outcome itself; here we assert it said every step passed, with real values, and
that it left nothing behind — also when interrupted with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"

pytestmark = pytest.mark.slow

#: A value the run could only print if it really happened, per step.
REAL_VALUES = {
    1: r"3 versions uploaded, sha256 verified \([0-9a-f]{12}, [0-9a-f]{12}, [0-9a-f]{12}\)",
    2: r"v1 live, 100% of traffic, 4 instances loaded it",
    3: r"SUCCEEDED; the router followed v2 through 5/10/25/50/100%; v2 served [1-9]\d* requests",
    4: r"ROLLED_BACK to v2: error rate 0\.\d+ > 0\.05 over \d+ requests; \d+ ms from breaching report to rollback",
    5: r"alert [0-9a-f]{16} \(deployment [0-9a-f]{12} of fraud-detector 3 rolled back.*acked by \S+; webhook notified",
    6: r"`amount` drifted \(PSI \d+\.\d+\), `country` did not; drift alert [0-9a-f]{16} raised",
    7: r"v4 won: lift \+\d+\.\d%.*always-valid p [\d.e-]+; promoted by canary, live",
    8: r"SUCCEEDED in 2 batches; all 4 instances serve v4\.1",
    9: r"command [0-9a-f]{16}: v5 registered by the pipeline, canary [0-9a-f]{12} SUCCEEDED, v5 live",
    10: r"[1-9]\d* metric lines served",
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _workspace(output: str) -> Path:
    found = re.search(r"everything lives in (\S+) and goes away", output)
    assert found, output[:500]
    return Path(found.group(1))


def _server_pid(output: str) -> int:
    found = re.search(r"\$ modelctl-server --config \S+\s+\(pid (\d+)\)", output)
    assert found, output[:800]
    return int(found.group(1))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(300)
def test_the_demo_tells_every_step_with_real_values_and_cleans_up() -> None:
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(DEMO), "--fast"], cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=280)
    took = time.monotonic() - started
    out = run.stdout
    assert run.returncode == 0, f"the demo failed (exit {run.returncode}):\n{out[-4000:]}\n{run.stderr[-2000:]}"
    for step, pattern in REAL_VALUES.items():
        line = re.search(rf"^✔ step {step}: (.*)$", out, re.M)
        assert line, f"step {step} did not report success:\n{out[-3000:]}"
        assert re.search(pattern, line.group(1)), f"step {step} printed {line.group(1)!r}, not /{pattern}/"
    # The real CLI ran, and showed what it printed.
    for command in ("$ modelctl deploy fraud-detector 3 --strategy canary", "$ modelctl alerts ack",
                    "$ modelctl drift show fraud-detector", "$ modelctl experiments stop",
                    "$ modelctl pipelines optimize trainer", "Gate evaluations"):
        assert command in out
    assert re.search(r"All 10 steps behaved as expected in \d+ s\.", out)
    assert not _workspace(out).exists()
    assert _gone(_server_pid(out))
    print(f"demo --fast took {took:.0f} s")


@pytest.mark.timeout(120)
def test_ctrl_c_stops_everything_and_removes_the_directory() -> None:
    proc = subprocess.Popen([sys.executable, str(DEMO), "--fast"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("== 3/10"):  # mid-canary: a CLI command, the fleet and the agent are running
                break
        else:
            pytest.fail("the demo ended before step 3:\n" + "".join(lines))
        time.sleep(1.0)  # let the canary's --watch start: the interrupt lands inside a running command
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted: stopping the fleet and the server" in out
    assert "cleanup:" not in out, out[-2000:]  # no closer failed
    assert not _workspace(out).exists()
    assert _gone(_server_pid(out))
    assert "Traceback" not in out, out[-3000:]

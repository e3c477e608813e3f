#!/usr/bin/env python3
"""Run every benchmark in bench/ (each `*.py` but this one and `_*.py`), one after the other.

`make bench` calls this. Each script runs with this interpreter, prints its own table, and must stop
by itself; one that runs past `--timeout` seconds is killed and counted as failed. The exit code is
non-zero when any benchmark failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted(p for p in BENCH_DIR.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per benchmark (default 300)")
    parser.add_argument("names", nargs="*", help="only these benchmarks (file names, with or without .py)")
    args = parser.parse_args(argv)

    chosen = scripts()
    if args.names:
        wanted = {n.removesuffix(".py") for n in args.names}
        chosen = [p for p in chosen if p.stem in wanted]
        missing = wanted - {p.stem for p in chosen}
        if missing:
            print(f"no such benchmark: {', '.join(sorted(missing))} (have: "
                  f"{', '.join(p.stem for p in scripts())})", file=sys.stderr)
            return 2
    failed: list[str] = []
    for script in chosen:
        print(f"=== {script.name} ===", flush=True)
        started = time.monotonic()
        # Its own session, so a benchmark that overruns is killed with the servers it started.
        proc = subprocess.Popen([sys.executable, str(script)], cwd=BENCH_DIR.parent, start_new_session=True)
        try:
            code = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            print(f"{script.name}: killed after {args.timeout:g} s", file=sys.stderr)
            code = -1
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        print(f"=== {script.name}: {'ok' if code == 0 else f'FAILED ({code})'} "
              f"in {time.monotonic() - started:.1f} s ===\n", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

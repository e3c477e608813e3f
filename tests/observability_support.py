"""What the observability tests share: the repository's prometheus/ and grafana/ files, and the tools.

Prometheus, promtool and docker-compose come from Debian (`make test` installs them through
scripts/install_system_deps.sh). In CI (`CI=true`) a missing one fails the test; elsewhere the
test skips and says how to get it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "prometheus"
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
_PACKAGES = {"prometheus": "prometheus", "promtool": "prometheus", "docker-compose": "docker-compose"}


def require_tool(name: str) -> str:
    """The path of a command-line tool; fails in CI and skips elsewhere when it is missing."""
    path = shutil.which(name)
    if path is None:
        package = _PACKAGES[name]
        message = (f"{name} is not installed: run `make system-deps` "
                   f"(or `sudo apt-get install --no-install-recommends {package}`)")
        if IN_CI:
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(message)
    return path


def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards, what Grafana loads: file stem -> dashboard."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside collapsed rows


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in dashboard["templating"]["list"] if v["type"] == "query"]


def annotations(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in dashboard["annotations"]["list"] if "expr" in a]

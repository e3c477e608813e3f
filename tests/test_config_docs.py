"""docs/configuration.md and the state tables of docs/architecture.md are generated from the code.

`scripts/gen_docs.py` writes them from `modelctl_server.config` (every key, default, environment
variable, and the `#:` comment of each field) and from the `TRANSITIONS` tables; these tests fail
when the committed docs are stale, and prove the defaults the page prints are the real ones.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import tomllib
from pathlib import Path

from modelctl_server import Settings, load_settings
from modelctl_server import config as settings_module

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
assert _spec is not None and _spec.loader is not None
gen_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_docs)


def test_generated_sections_are_up_to_date(capsys) -> None:  # type: ignore[no-untyped-def]
    code = gen_docs.main(["--check"])
    assert code == 0, capsys.readouterr().err


def _documented() -> dict[str, tuple[str, str]]:
    """{"section.key": (default as written, environment variable)} from the page's tables."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    out: dict[str, tuple[str, str]] = {}
    section = ""
    for line in text.splitlines():
        if found := re.match(r"### `\[(\w+)\]`", line):
            section = found.group(1)
        elif line.startswith("Each `[[notifications.destinations]]`"):
            section = ""
        elif section and (row := re.match(r"\| `(\w+)` \| `(.*?)` \| (.*?) \|", line)):
            out[f"{section}.{row.group(1)}"] = (row.group(2), row.group(3))
    return out


def test_every_key_is_documented_with_its_environment_variable() -> None:
    documented = _documented()
    assert set(documented) == set(Settings().flatten())
    for key, (_, env) in documented.items():
        if key != "notifications.destinations":
            section, name = key.split(".")
            assert env == f"`MODELCTL_{section.upper()}_{name.upper()}`", key
    assert all(c for c in gen_docs.field_comments(settings_module.DeploymentSettings).values())


def test_the_printed_defaults_load_as_the_defaults(tmp_path: Path) -> None:
    """A file made of every documented default gives exactly the built-in settings."""
    lines: list[str] = []
    by_section: dict[str, list[str]] = {}
    for key, (default, _) in _documented().items():
        section, name = key.split(".")
        if key != "notifications.destinations":
            by_section.setdefault(section, []).append(f"{name} = {default.replace('_', '')}")
    for section, entries in by_section.items():
        lines += [f"[{section}]", *entries]
    text = "\n".join(lines)
    tomllib.loads(text)  # valid TOML as printed
    path = tmp_path / "documented-defaults.toml"
    path.write_text(text)
    loaded = load_settings(path, environ={})
    assert dataclasses.replace(loaded, config_file="") == Settings()

"""Write the generated sections of the docs from the code they describe (`make docs`; `--check` for tests).

- docs/configuration.md, between `<!-- generated:settings -->` and `<!-- /generated:settings -->`:
  every section, key, default and environment variable of `modelctl_server.config`, described by
  the `#:` comments above each dataclass field;
- docs/architecture.md, between `<!-- generated:state-machines -->` and its end marker: the
  transition tables of deployments, experiments, pipeline commands and alerts, read from the
  `TRANSITIONS` tables every write is checked against, with each state's docstring.

The prose around the markers is written by hand and left alone. `--check` exits 1 and names the
file when a generated section differs from what the code gives (tests/test_config_docs.py runs it).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from modelctl_server import config
from modelctl_server.alerts import lifecycle
from modelctl_server.deployments import phases
from modelctl_server.experiments import states as experiment_states
from modelctl_server.pipelines import states as command_states

ROOT = Path(__file__).resolve().parent.parent


# --- settings -----------------------------------------------------------------------------------------------

def field_comments(cls: type) -> dict[str, str]:
    """The `#:` comment lines right above each field of a dataclass, joined."""
    lines, _ = inspect.getsourcelines(cls)
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        found = re.match(r"\s+(\w+):\s", line)
        if not found or line.strip().startswith("#"):
            continue
        comment: list[str] = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#:"):
            comment.insert(0, lines[j].strip()[2:].strip())
            j -= 1
        out[found.group(1)] = " ".join(comment)
    return out


def duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def toml_value(key: str, value: Any) -> str:
    if key in config._DURATION_KEYS:
        return f'"{duration(float(value))}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value("", v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int) and value >= 10_000:
        return f"{value:_}"
    return repr(value)


def settings_section() -> str:
    out = ["Every key, its default (as written in the TOML file) and its environment variable. Keys marked",
           "*restart* take effect when the process starts; `modelctl restart` reports them as `ignored_keys`.", ""]
    for section in config._SECTIONS:
        cls = config._section_type(section)
        comments = field_comments(cls)
        out += [f"### `[{section}]`", "", "| key | default | environment | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            env = f"`MODELCTL_{section.upper()}_{f.name.upper()}`"
            if section == "notifications" and f.name == "destinations":
                env = "config file only: `[[notifications.destinations]]`"
            # `<data_dir>/models` in backticks, or Markdown takes it for an HTML tag.
            meaning = re.sub(r"(<\w+>[^\s,;]*?)(?=[.,;]?(\s|$))", r"`\1`", comments.get(f.name, ""))
            if f"{section}.{f.name}" in config.RESTART_ONLY_KEYS:
                meaning = f"{meaning} *restart*".strip()
            out.append(f"| `{f.name}` | `{toml_value(f.name, default)}` | {env} | {meaning} |")
        out.append("")
    dest = config.NotificationDestination
    comments = field_comments(dest)
    out += ["Each `[[notifications.destinations]]` table:", "", "| key | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(dest):
        default = "required" if f.default is dataclasses.MISSING else f"`{toml_value(f.name, f.default)}`"
        out.append(f"| `{f.name}` | {default} | {comments.get(f.name, '') or 'an Apprise URL'} |")
    return "\n".join(out) + "\n"


# --- state machines -----------------------------------------------------------------------------------------

def member_docs(cls: type[enum.Enum]) -> dict[str, str]:
    """The docstring under each enum member (`A = "A"` then `\"\"\"...\"\"\"`)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.Assign) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.targets[0].id] = " ".join(after.value.value.split())  # type: ignore[attr-defined]
    return docs


def transitions_table(title: str, where: str, table: dict[Any, frozenset[Any]], cls: type[enum.Enum]) -> list[str]:
    docs = member_docs(cls)
    out = [f"### {title} (`{where}`)", "", "| state | may become | meaning |", "|---|---|---|"]
    for state, targets in table.items():
        moves = ", ".join(sorted(t.value for t in targets)) or "— (final)"
        out.append(f"| `{state.value}` | {moves} | {docs.get(state.name, '')} |")
    return out + [""]


def state_machines_section() -> str:
    out = ["Every write of a state goes through its table (`check_transition` / `check_change`), so a",
           "move that is not listed is refused with `FAILED_PRECONDITION` and changes nothing.", ""]
    out += transitions_table("Deployments", "server/deployments/phases.py", phases.TRANSITIONS, phases.Phase)
    out += transitions_table("Experiments", "server/experiments/states.py", experiment_states.TRANSITIONS,
                             experiment_states.ExperimentState)
    out += transitions_table("Pipeline commands", "server/pipelines/states.py", command_states.TRANSITIONS,
                             command_states.CommandState)
    out += ["### Alerts (`server/alerts/lifecycle.py`)", "", "| state before | change | state after |",
            "|---|---|---|"]
    for (before, change), after in lifecycle.TRANSITIONS.items():
        out.append(f"| {before.value if before else '(none open)'} | {change.value} | {after.value} |")
    return "\n".join(out) + "\n"


# --- files --------------------------------------------------------------------------------------------------

SECTIONS = {
    "docs/configuration.md": ("settings", settings_section),
    "docs/architecture.md": ("state-machines", state_machines_section),
}


def render(text: str, name: str, body: str) -> str:
    begin = f"<!-- generated:{name} (scripts/gen_docs.py; do not edit by hand) -->"
    end = f"<!-- /generated:{name} -->"
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"no `{begin}` ... `{end}` markers")
    return pattern.sub(lambda _: f"{begin}\n{body}{end}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated section is stale")
    args = parser.parse_args(argv)
    stale = []
    for rel, (name, build) in SECTIONS.items():
        path = ROOT / rel
        text = path.read_text()
        new = render(text, name, build())
        if new != text:
            if args.check:
                stale.append(rel)
            else:
                path.write_text(new)
                print(f"wrote {rel}")
    if stale:
        print(f"stale generated docs: {', '.join(stale)}; run `make docs` (python scripts/gen_docs.py)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

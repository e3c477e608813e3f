"""Every code sample in README.md and docs/*.md runs, so the docs cannot drift from the product.

Per document, against one fresh controller (MODELCTL_ADDR and MODELCTL_TOKEN set, as
a reader's shell would have them, in a directory holding a small `model.pkl`), the
fenced blocks run in the order they appear:

- ```python: executed in one namespace per document;
- ```sh / ```shell / ```bash: run with `bash -euo pipefail`, the real `modelctl` on PATH,
  `127.0.0.1:50051` pointing at the test's controller; each must exit 0;
- ```toml: loaded with `load_settings` (a file it names that does not exist here is the only
  error tolerated);
- ```yaml / ```json: parsed.

```text (diagrams, synopses, output) is not code. A block that cannot run here (it starts a
server, needs Docker, is the suite's own entry point) is preceded by `<!-- not-run: reason -->`;
a block with no language at all fails, so nothing escapes by accident.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from modelctl_server import load_settings
from modelctl_server.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<why>.+?)\s*-->\s*$")
SHELL = {"sh", "shell", "bash", "console"}
NOT_CODE = {"text", "mermaid"}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int
    not_run: str | None


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    out = []
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").splitlines()
        marker = _NOT_RUN.search(before[-1]) if before else None
        out.append(Block(m.group("lang"), textwrap.dedent(m.group("body")), text[:m.start()].count("\n") + 1,
                         marker.group("why") if marker else None))
    return out


def test_every_block_declares_what_it_is() -> None:
    for document in DOCUMENTS:
        for b in blocks(ROOT / document):
            assert b.lang, f"{document}:{b.line}: a fenced block needs a language (```text for diagrams and output)"


def runnable(document: str) -> list[Block]:
    return [b for b in blocks(ROOT / document) if b.not_run is None and b.lang not in NOT_CODE]


#: Documents with something to run (the others hold only diagrams and tables; the test above covers them).
WITH_CODE = [d for d in DOCUMENTS if runnable(d)]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("document", WITH_CODE)
def test_examples_run(document: str, live_server, monkeypatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "model.pkl").write_bytes(b"a small model file\n" * 64)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELCTL_ADDR", live_server.address)
    monkeypatch.setenv("MODELCTL_TOKEN", live_server.admin_token)
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    for b in runnable(document):
        where = f"{document}:{b.line}"
        if b.lang == "python":
            exec(compile(b.body, f"{where} (python block)", "exec"), namespace)  # noqa: S102
        elif b.lang in SHELL:
            run_shell(b.body, where, live_server.address, tmp_path)
        elif b.lang == "toml":
            load_toml(b.body, where, tmp_path)
        elif b.lang in ("yaml", "yml"):
            yaml.safe_load(b.body)
        elif b.lang == "json":
            json.loads(b.body)
        else:
            pytest.fail(f"{where}: no way to run a ```{b.lang} block; mark it <!-- not-run: why --> or use text")
    capsys.readouterr()


def run_shell(body: str, where: str, address: str, cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = body.replace("127.0.0.1:50051", address)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"{where}: shell block exited {done.returncode}\n{done.stdout}\n{done.stderr}"


def load_toml(body: str, where: str, tmp_path: Path) -> None:
    path = tmp_path / "doc-example.toml"
    path.write_text(body)
    try:
        load_settings(path, environ={})
    except ConfigError as exc:
        # Paths of another machine (certificates under /etc) are the only thing allowed to be missing.
        assert re.search(r"file \S+ does not exist", str(exc)), f"{where}: {exc}"

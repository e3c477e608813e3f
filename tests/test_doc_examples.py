"""The Python examples in the docs run, against a real server, so they cannot drift from the SDK.

Every ```python block of each document listed here is executed in order, in one
namespace per document, with MODELCTL_ADDR and MODELCTL_TOKEN pointing at a
fresh controller (as a reader's shell would).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["docs/drift-and-experiments.md"]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text())


@pytest.mark.parametrize("document", DOCUMENTS)
def test_python_examples_run(document: str, live_server, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    blocks = python_blocks(ROOT / document)
    assert blocks, f"{document} has no python example"
    monkeypatch.setenv("MODELCTL_ADDR", live_server.address)
    monkeypatch.setenv("MODELCTL_TOKEN", live_server.admin_token)
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{document}[python block {i + 1}]", "exec"), namespace)  # noqa: S102
    assert capsys.readouterr().out  # the examples show their results

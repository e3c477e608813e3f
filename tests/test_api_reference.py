"""The API reference (docs/api.md) is the .proto comments: every element has one, every RPC names its
role (as server/api/policy.py enforces it) and its errors, and the committed document is current."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2

from modelctl_server.api.policy import POLICIES

ROOT = Path(__file__).resolve().parent.parent
#: Status codes an RPC comment may name (grpc.StatusCode names the server returns on purpose).
CODES = {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNAUTHENTICATED",
         "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED"}
STATUS_NAMES = {code.name for code in grpc.StatusCode}


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


gen_protos = _load("gen_protos")
api_doc = sys.modules["_api_doc"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[descriptor_pb2.FileDescriptorSet, str]:
    into = tmp_path_factory.mktemp("protos")
    gen_protos.generate(into)
    fds = descriptor_pb2.FileDescriptorSet.FromString((into / gen_protos.DESCRIPTORS).read_bytes())
    return fds, gen_protos.api_doc(into)


def test_every_element_of_the_contract_has_a_comment(generated) -> None:  # type: ignore[no-untyped-def]
    fds, _ = generated
    found = api_doc.elements(fds)
    kinds = {e.kind for e in found}
    assert kinds == {"service", "rpc", "message", "field", "enum", "value"}
    missing = [f"{e.kind} {e.name} ({e.file})" for e in found if not e.comment]
    assert not missing, "undocumented in the .proto:\n" + "\n".join(missing)


def test_every_rpc_states_the_role_policy_enforces_and_its_errors(generated) -> None:  # type: ignore[no-untyped-def]
    fds, _ = generated
    rpcs = {e.name.rsplit(".", 1)[1]: api_doc.split_rpc_comment(e.comment)
            for e in api_doc.elements(fds) if e.kind == "rpc"}
    assert set(rpcs) == set(POLICIES), "every RPC has a policy and every policy an RPC"
    wrong = {name: (doc.role, POLICIES[name].role.name.lower()) for name, doc in rpcs.items()
             if doc.role != POLICIES[name].role.name.lower()}
    assert not wrong, f"RPC comments whose `Role:` line disagrees with POLICIES (said, enforced): {wrong}"
    no_errors = [name for name, doc in rpcs.items() if not doc.errors]
    assert not no_errors, f"RPC comments without an `Errors:` line: {no_errors}"
    for name, doc in rpcs.items():
        assert doc.description, f"{name}: say what it does before `Role:`"
        named = set(re.findall(r"\b[A-Z]+(?:_[A-Z]+)*\b", doc.errors)) & STATUS_NAMES
        assert named <= CODES, f"{name} promises status codes the server never returns on purpose: {named - CODES}"
        assert named or "common" in doc.errors, f"{name}: name its status codes, or say only the common ones apply"


def test_the_reference_shows_every_rpc_message_and_enum_with_links(generated) -> None:  # type: ignore[no-untyped-def]
    fds, doc = generated
    for e in api_doc.elements(fds):
        short = e.name.removeprefix("modelctl.v1.")
        if e.kind in ("message", "enum"):
            assert f'<a id="{short.lower().replace(".", "-")}"></a>' in doc, short
        elif e.kind == "rpc":
            assert f"#### `{short.rsplit('.', 1)[1]}`" in doc, short
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', doc))
    links = set(re.findall(r"\]\(#([^)]+)\)", doc))
    assert not links - anchors, f"links to no section: {sorted(links - anchors)}"
    assert "UploadArtifact(stream [`UploadArtifactRequest`](#uploadartifactrequest))" in doc
    assert "*(client streaming)*" in doc
    assert "*(server streaming)*" in doc
    assert "(undocumented)" not in doc and "(not stated)" not in doc


def test_the_committed_reference_is_current(generated) -> None:  # type: ignore[no-untyped-def]
    _, doc = generated
    committed = ROOT / "docs" / "api.md"
    assert committed.exists(), "run `make proto` to write docs/api.md"
    assert committed.read_text() == doc, "docs/api.md is stale: run `make proto`"


def test_rendering_is_stable(generated) -> None:  # type: ignore[no-untyped-def]
    fds, doc = generated
    shuffled = descriptor_pb2.FileDescriptorSet()
    shuffled.file.extend(reversed(fds.file))
    assert api_doc.render(shuffled) == doc


def test_rpc_comment_parts() -> None:
    parsed = api_doc.split_rpc_comment("Does a thing.\nMore.\nRole: operator.\nErrors: NOT_FOUND for an unknown\n"
                                       "thing; FAILED_PRECONDITION once final.")
    assert parsed.description == "Does a thing.\nMore."
    assert parsed.role == "operator"
    assert parsed.errors == "NOT_FOUND for an unknown thing; FAILED_PRECONDITION once final."

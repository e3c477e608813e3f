"""Regenerate the SDK's protobuf stubs from proto/ (run as `make proto`).

proto/modelctl/v1/*.proto is the only source of the contract. The generated
_pb2.py, _pb2_grpc.py and mypy-protobuf .pyi files land in client/v1/, which is
imported as `modelctl.v1` and holds nothing hand-written but its __init__.py.

The same protoc run writes a FileDescriptorSet with source info, from which
scripts/_api_doc.py renders docs/api.md: the API reference is the .proto comments.

`--check` regenerates into a scratch folder and exits 1 if the committed stubs or
docs/api.md differ, so CI catches a .proto edited without `make proto`.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _api_doc  # noqa: E402  - beside this script, which is run by path, not imported

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_PACKAGE = ROOT / "client" / "v1"
API_DOC = ROOT / "docs" / "api.md"
DESCRIPTORS = "descriptors.binpb"  # beside the generated package in the scratch folder, never committed
INIT_TEXT = '"""Generated protobuf and gRPC stubs for modelctl.v1 (do not edit; run `make proto`)."""\n'


def generate(into: Path) -> list[Path]:
    protos = sorted(PROTO_ROOT.glob("modelctl/v1/*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent  # mypy-protobuf installs its plugins beside python
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={into}",
        f"--grpc_python_out={into}",
        f"--mypy_out={into}",
        f"--mypy_grpc_out={into}",
        f"--descriptor_set_out={into / DESCRIPTORS}",
        "--include_source_info",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = into / "modelctl" / "v1"
    (generated / "__init__.py").write_text(INIT_TEXT)
    return sorted(generated.iterdir())


def api_doc(into: Path) -> str:
    """docs/api.md as the descriptor set `generate(into)` wrote renders it."""
    fds = descriptor_pb2.FileDescriptorSet.FromString((into / DESCRIPTORS).read_bytes())
    return _api_doc.render(fds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
        names = {f.name for f in files}
        doc = api_doc(Path(tmp))
        if opts.check:
            committed = {p.name for p in OUT_PACKAGE.iterdir() if p.is_file()}
            stale = sorted(n for n in names if not (OUT_PACKAGE / n).exists()
                           or not filecmp.cmp(OUT_PACKAGE / n, Path(tmp) / "modelctl" / "v1" / n, shallow=False))
            extra = sorted(committed - names)
            doc_stale = not API_DOC.exists() or API_DOC.read_text() != doc
            if stale or extra or doc_stale:
                if stale or extra:
                    print(f"generated stubs are out of date (stale: {stale}, unexpected: {extra}); "
                          "run `make proto`", file=sys.stderr)
                if doc_stale:
                    print(f"{API_DOC.relative_to(ROOT)} is out of date with the .proto comments; run `make proto`",
                          file=sys.stderr)
                return 1
            print(f"generated stubs and {API_DOC.relative_to(ROOT)} are current ({len(names)} files)")
            return 0
        if OUT_PACKAGE.exists():
            shutil.rmtree(OUT_PACKAGE)
        OUT_PACKAGE.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, OUT_PACKAGE / f.name)
        API_DOC.parent.mkdir(exist_ok=True)
        API_DOC.write_text(doc)
        print(f"wrote {len(files)} files to {OUT_PACKAGE.relative_to(ROOT)} and {API_DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

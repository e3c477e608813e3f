"""The wheel claims only `modelctl` and `modelctl_server` and ships every module; the stubs are current."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
#: import name -> folder, from [tool.setuptools] package-dir
PACKAGE_DIR: dict[str, str] = SETUPTOOLS["package-dir"]


def _source_files() -> list[Path]:
    """What a fresh clone plus the working tree's new files holds (tracked and untracked, not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [Path(p) for p in out.decode().split("\0") if p and (ROOT / p).exists()]


def _import_name(path: Path) -> str | None:
    """`client/v1/x.py` -> `modelctl/v1/x.py`, through package-dir; None outside the mapped folders."""
    for name, folder in PACKAGE_DIR.items():
        if path.parts[0] == folder:
            return "/".join((name, *path.parts[1:]))
    return None


def test_package_dir_maps_only_product_names() -> None:
    assert PACKAGE_DIR == {"modelctl": "client", "modelctl_server": "server"}


def test_every_folder_with_an_init_is_listed_in_packages() -> None:
    listed = set(SETUPTOOLS["packages"])
    found = set()
    for folder in PACKAGE_DIR.values():
        for init in (ROOT / folder).rglob("__init__.py"):
            mapped = _import_name(init.parent.relative_to(ROOT) / "__init__.py")
            assert mapped is not None
            found.add(mapped.removesuffix("/__init__.py").replace("/", "."))
    missing = sorted(found - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert all(p.split(".")[0] in PACKAGE_DIR for p in listed)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built offline (the venv's setuptools) from a copy of the repository's files."""
    work = tmp_path_factory.mktemp("wheel")
    src, out = work / "src", work / "dist"
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--wheel-dir", str(out), str(src)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    [built] = out.glob("modelctl-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.slow
def test_wheel_holds_only_the_product_packages(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert top - dist_info == {"modelctl", "modelctl_server"}
    top_level = wheel.read(f"{dist_info.pop()}/top_level.txt").decode().split()
    assert sorted(top_level) == ["modelctl", "modelctl_server"]


@pytest.mark.slow
def test_wheel_ships_every_module_migration_and_stub(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {_import_name(p) for p in _source_files() if p.suffix in (".py", ".pyi", ".mako")}
    expected.discard(None)
    missing = sorted(n for n in expected if n not in names)
    assert not missing, f"in the source tree, not in the wheel (pyproject packages/package-data): {missing}"
    assert "modelctl_server/store/migrations/env.py" in names
    assert "modelctl_server/store/migrations/script.py.mako" in names
    versions = "modelctl_server/store/migrations/versions/"
    assert any(n.startswith(versions) and n.endswith(".py") for n in names)
    for stub in ("controller", "registry", "system"):
        assert f"modelctl/v1/{stub}_pb2.py" in names and f"modelctl/v1/{stub}_pb2_grpc.py" in names
    assert "modelctl/py.typed" in names


@pytest.mark.slow
def test_wheel_declares_both_console_scripts(wheel: zipfile.ZipFile) -> None:
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "modelctl = modelctl.cli.main:main" in text
    assert "modelctl-server = modelctl_server.main:main" in text


@pytest.mark.slow
def test_committed_stubs_match_the_protos() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_stub_check_fails_on_a_stale_stub(tmp_path: Path) -> None:
    for folder in ("proto", "scripts", "client/v1"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    stale = tmp_path / "client" / "v1" / "registry_pb2.py"
    stale.write_text(stale.read_text() + "\n# edited by hand\n")
    result = subprocess.run([sys.executable, str(tmp_path / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "registry_pb2.py" in result.stderr

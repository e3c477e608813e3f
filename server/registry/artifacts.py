"""Content-addressed artifact storage under `registry.models_dir`.

Uploads stream into a temporary file while being hashed; only when the digest
matches what the client declared is the file renamed into
`sha256/<first two hex>/<digest>`. A mismatch or an interrupted upload leaves
nothing behind. Identical bytes are stored once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import FieldViolation, ValidationError


@dataclass(frozen=True)
class StoredArtifact:
    uri: str
    sha256: str
    size_bytes: int


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self._tmp = self.root / "tmp"

    def start_upload(self) -> Upload:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return Upload(self, self._tmp / f"upload-{secrets.token_hex(8)}")

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def uri_for(self, sha256: str) -> str:
        return self.path_for(sha256).as_uri()

    def lookup(self, uri: str) -> StoredArtifact | None:
        """The stored artifact a URI names, if it points into this store."""
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return None
        path = Path(parsed.path)
        if path.parent.parent != self.root / "sha256" or not path.is_file():
            return None
        return StoredArtifact(uri=uri, sha256=path.name, size_bytes=path.stat().st_size)

    def is_managed(self, uri: str) -> bool:
        parsed = urlparse(uri)
        return parsed.scheme == "file" and Path(parsed.path).is_relative_to(self.root)

    def sweep(self, referenced: set[str], now: float, grace_seconds: float) -> list[Path]:
        """Delete stored artifacts no version refers to, and abandoned uploads, older than the grace.

        The grace covers the gap between UploadArtifact and the RegisterModel that
        refers to it. Returns what was removed.
        """
        removed: list[Path] = []
        candidates = list((self.root / "sha256").glob("*/*")) + list(self._tmp.glob("upload-*"))
        for path in candidates:
            try:
                old_enough = now - path.stat().st_mtime > grace_seconds
            except FileNotFoundError:
                continue  # removed meanwhile
            if old_enough and path.is_file() and path.as_uri() not in referenced:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


class Upload:
    """One upload in progress. Call `write` per chunk, then `commit` or `abort`."""

    def __init__(self, store: ArtifactStore, tmp_path: Path) -> None:
        self._store = store
        self._path = tmp_path
        self._file = open(tmp_path, "wb")  # noqa: SIM115 - closed by commit/abort
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def commit(self, expected_sha256: str, expected_size: int = 0) -> StoredArtifact:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            digest = self._hash.hexdigest()
            if expected_size and expected_size != self.size:
                raise ValidationError(FieldViolation(
                    "header.size_bytes", f"declared {expected_size} bytes but {self.size} arrived"))
            if digest != expected_sha256:
                raise ValidationError(FieldViolation(
                    "header.sha256", f"declared {expected_sha256} but the uploaded bytes hash to {digest}"))
            final = self._store.path_for(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path, final)  # atomic: readers see all of it or nothing
            return StoredArtifact(uri=final.as_uri(), sha256=digest, size_bytes=self.size)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._path.unlink(missing_ok=True)

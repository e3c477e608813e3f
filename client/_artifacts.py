"""Turning a local artifact (a path or an open binary file) into UploadArtifact messages.

The contract puts the sha256 in the header, before any byte, so the server can
refuse a mismatch without keeping anything. The digest therefore has to be
known before streaming: a seekable file is hashed in a first pass and rewound;
a pipe or socket is copied to a temporary file while being hashed. Callers that
already know the digest pass it and skip that pass; the server checks it anyway.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Callable, Iterator, Union
from urllib.parse import urlparse

from modelctl.v1 import registry_pb2 as _registry

#: A path, or a file object opened in binary mode.
ArtifactSource = Union[str, "os.PathLike[str]", IO[bytes]]
#: Called after each chunk with (bytes sent so far, total bytes).
ProgressCallback = Callable[[int, int], None]

DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Stay well under the 16 MiB message limit whatever the caller asks for.
MAX_CHUNK_SIZE = 4 * 1024 * 1024


def is_uri(artifact: object) -> bool:
    """True for a string naming a remote or already-stored artifact (`s3://...`), False for a local file.

    Which schemes are acceptable is the server's call; a one-letter scheme is a
    Windows drive (`C:\\models\\m.pkl`), not a URI.
    """
    return isinstance(artifact, str) and "://" in artifact and len(urlparse(artifact).scheme) > 1


class PreparedArtifact:
    """An open, rewound artifact with its digest and size, ready to stream.

    Use as a context manager: it closes what it opened (not a file object the caller passed).
    """

    def __init__(self, source: ArtifactSource, *, filename: str | None = None, sha256: str | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE} bytes")
        self.chunk_size = chunk_size
        #: What broke `requests()` (an unreadable file, a failing progress callback), if anything.
        self.failure: Exception | None = None
        self._stack = ExitStack()
        try:
            self._file, default_name = self._open(source)
            self.filename = filename if filename is not None else default_name
            if sha256 is not None:
                self.sha256 = sha256.lower()
                self.size = _remaining_size(self._file)
            else:
                self.sha256, self.size = self._hash()
        except BaseException:
            self._stack.close()
            raise

    def _open(self, source: ArtifactSource) -> tuple[IO[bytes], str]:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            return self._stack.enter_context(open(path, "rb")), path.name
        if not _seekable(source):
            # Spool it so that it can be hashed and then read again.
            spool = self._stack.enter_context(tempfile.TemporaryFile(prefix="modelctl-upload-"))
            shutil.copyfileobj(source, spool, DEFAULT_CHUNK_SIZE)
            spool.seek(0)
            return spool, _name_of(source)
        return source, _name_of(source)

    def _hash(self) -> tuple[str, int]:
        start = self._file.tell()
        digest, size = hashlib.sha256(), 0
        while block := self._file.read(DEFAULT_CHUNK_SIZE):
            digest.update(block)
            size += len(block)
        self._file.seek(start)
        return digest.hexdigest(), size

    def header(self) -> _registry.UploadArtifactRequest:
        return _registry.UploadArtifactRequest(header=_registry.ArtifactHeader(
            filename=self.filename, sha256=self.sha256, size_bytes=self.size))

    def read_chunk(self) -> bytes:
        return self._file.read(self.chunk_size)

    def requests(self, progress: ProgressCallback | None = None) -> Iterator[_registry.UploadArtifactRequest]:
        """The header, then the file in chunks, reporting progress after each one."""
        try:
            yield self.header()
            sent = 0
            while chunk := self.read_chunk():
                yield _registry.UploadArtifactRequest(chunk=chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent, self.size)
        except Exception as exc:
            # gRPC swallows an exception raised while it iterates the requests and reports
            # UNKNOWN "Exception iterating requests!"; keep the real cause for the caller.
            self.failure = exc
            raise

    def raise_failure_of(self, error: BaseException) -> None:
        """Raise what broke the request stream, if anything did, in place of gRPC's `error`."""
        if self.failure is not None:
            raise self.failure from error

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> PreparedArtifact:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _seekable(file: IO[bytes]) -> bool:
    try:
        return file.seekable()
    except (AttributeError, ValueError):
        return False


def _remaining_size(file: IO[bytes]) -> int:
    """Bytes left from the current position (every file here is seekable: pipes were spooled)."""
    here = file.tell()
    end = file.seek(0, os.SEEK_END)
    file.seek(here)
    return end - here


def _name_of(file: IO[bytes]) -> str:
    name = getattr(file, "name", "")
    return Path(name).name if isinstance(name, str) else ""

"""Rules for names, versions, URIs and metadata, reporting every bad field at once."""

from __future__ import annotations

import math
import re
from urllib.parse import urlparse

from ..errors import Violations

NAME_RE = re.compile(r"[a-z0-9._-]{1,128}")
# Versions also admit upper case and '+', so semver with build metadata (1.2.0+gpu) fits.
VERSION_RE = re.compile(r"[A-Za-z0-9._+-]{1,128}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
TAG_KEY_RE = re.compile(r"[A-Za-z0-9._/-]{1,128}")
URI_SCHEMES = ("s3", "gs", "file", "https")
MAX_TAG_VALUE = 256
MAX_DESCRIPTION = 4096
MAX_FRAMEWORK = 64
MAX_ENTRIES = 64


def check_name(name: str, problems: Violations, field: str = "name") -> None:
    if not name:
        problems.add(field, "is required")
    elif not NAME_RE.fullmatch(name):
        problems.add(field, f"{_short(name)!r} must be 1-128 characters of lowercase letters, digits, '-', '_' or '.'")


def check_version(version: str, problems: Violations, field: str = "version") -> None:
    if not version:
        problems.add(field, "is required")
    elif not VERSION_RE.fullmatch(version):
        problems.add(field, f"{_short(version)!r} must be 1-128 characters of letters, digits, '.', '_', '-' or '+'")


def check_sha256(sha256: str, problems: Violations, field: str = "sha256") -> None:
    if sha256 and not SHA256_RE.fullmatch(sha256):
        problems.add(field, "must be 64 lowercase hex characters")


def check_artifact_uri(uri: str, problems: Violations, field: str = "artifact_uri") -> None:
    if not uri:
        problems.add(field, "is required: an s3://, gs://, file:// or https:// URI, or upload the file first")
        return
    if len(uri) > 2048:
        problems.add(field, "must be at most 2048 characters")
        return
    parsed = urlparse(uri)
    if parsed.scheme not in URI_SCHEMES:
        problems.add(field, f"scheme {parsed.scheme or '(none)'!r} is not supported; use one of "
                     + ", ".join(f"{s}://" for s in URI_SCHEMES))
    elif parsed.scheme == "file":
        if not parsed.path.startswith("/") or parsed.netloc not in ("", "localhost"):
            problems.add(field, "a file:// URI needs an absolute path, e.g. file:///models/fraud/1.pkl")
    elif not parsed.netloc:
        problems.add(field, f"a {parsed.scheme}:// URI needs a bucket or host, e.g. {parsed.scheme}://bucket/path")


def check_metadata(framework: str, description: str, metrics: dict[str, float], tags: dict[str, str],
                   problems: Violations) -> None:
    if len(framework) > MAX_FRAMEWORK:
        problems.add("framework", f"must be at most {MAX_FRAMEWORK} characters")
    if len(description) > MAX_DESCRIPTION:
        problems.add("description", f"must be at most {MAX_DESCRIPTION} characters")
    if len(metrics) > MAX_ENTRIES:
        problems.add("metrics", f"at most {MAX_ENTRIES} entries")
    for key, value in metrics.items():
        if not TAG_KEY_RE.fullmatch(key):
            problems.add(f"metrics[{_short(key)}]",
                         "name must be 1-128 characters of letters, digits, '.', '_', '-', '/'")
        if not math.isfinite(value):
            problems.add(f"metrics[{_short(key)}]", "must be a finite number")
    if len(tags) > MAX_ENTRIES:
        problems.add("tags", f"at most {MAX_ENTRIES} entries")
    for key, value in tags.items():
        if not TAG_KEY_RE.fullmatch(key):
            problems.add(f"tags[{_short(key)}]", "key must be 1-128 characters of letters, digits, '.', '_', '-', '/'")
        if len(value) > MAX_TAG_VALUE:
            problems.add(f"tags[{_short(key)}]", f"value must be at most {MAX_TAG_VALUE} characters")


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."

"""Opaque page tokens and page sizes shared by every List RPC."""

from __future__ import annotations

import base64
import binascii
import json

from .errors import FieldViolation, ValidationError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size_or_default(size: int, *, field: str = "page_size") -> int:
    if size < 0 or size > MAX_PAGE_SIZE:
        raise ValidationError(FieldViolation(
            field, f"must be between 0 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"))
    return size or DEFAULT_PAGE_SIZE


def encode_page_token(kind: str, after: str) -> str:
    raw = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, *, kind: str, field: str = "page_token") -> str | None:
    """The position a token points after, or None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("a"), str):
            raise ValueError
        return data["a"]
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(FieldViolation(field, "is not a page token this call returned")) from None


def decode_id_page_token(token: str, *, kind: str, field: str = "page_token") -> int | None:
    """As `decode_page_token`, for lists paged by a numeric row id (tokens are not signed: check it)."""
    after = decode_page_token(token, kind=kind, field=field)
    if after is None:
        return None
    if not after.isdigit() or int(after) >= 2 ** 63:
        raise ValidationError(FieldViolation(field, "is not a page token this call returned"))
    return int(after)

"""Where notifications go: Apprise URLs with routing, and masking their secrets everywhere they are shown.

A destination's URL holds credentials (a Slack token, an SMTP password), so the
URL itself is only ever handed to Apprise. Everything a person or a log sees
is `masked`, which Apprise builds itself (`url(privacy=True)`) and which this
module's `mask_text` also scrubs from error messages.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field

import apprise

from ..alerts.model import Alert, AlertKind, Severity
from ..config import ConfigError, NotificationSettings

MASK = "****"


@dataclass(frozen=True)
class Destination:
    url: str = field(repr=False)
    masked: str
    scheme: str
    min_severity: Severity = Severity.WARNING
    models: frozenset[str] = frozenset()
    kinds: frozenset[AlertKind] = frozenset()

    @property
    def key(self) -> str:
        """Stable across restarts while the URL stays the same; what the outbox stores instead of the URL."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    def wants(self, alert: Alert) -> bool:
        return (alert.severity >= self.min_severity
                and (not self.models or alert.model in self.models)
                and (not self.kinds or alert.kind in self.kinds))

    def scrub(self, text: str) -> str:
        """`text` with this destination's URL and its secret parts masked."""
        return mask_text(text, self.url, self.masked)


def parse_destination(url: str, *, min_severity: Severity = Severity.WARNING, models: tuple[str, ...] = (),
                      kinds: tuple[AlertKind, ...] = (), where: str = "url") -> Destination:
    """A destination Apprise can send to; ConfigError (masked) for a URL it does not know."""
    plugin = apprise.Apprise.instantiate(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if plugin is None:
        raise ConfigError(f"{where}: {fallback_mask(url)} is not a URL Apprise can send to "
                          f"(e.g. mailto://, json://, slack://)")
    return Destination(url=url, masked=_mask_query(plugin.url(privacy=True)), scheme=scheme[:32],
                       min_severity=min_severity, models=frozenset(models), kinds=frozenset(kinds))


def destinations_from_settings(n: NotificationSettings) -> list[Destination]:
    """`notifications.urls` (every alert at least `min_severity`) and `[[notifications.destinations]]`."""
    out: list[Destination] = []
    for i, url in enumerate(n.urls):
        out.append(parse_destination(url, min_severity=Severity.parse(n.min_severity),
                                     where=f"notifications.urls[{i}]"))
    for i, d in enumerate(n.destinations):
        out.append(parse_destination(d.url, min_severity=Severity.parse(d.min_severity), models=d.models,
                                     kinds=tuple(AlertKind(k) for k in d.kinds),
                                     where=f"notifications.destinations[{i}].url"))
    seen: set[str] = set()
    unique = []
    for d in out:  # the same URL twice would be notified twice per change
        if d.key not in seen:
            seen.add(d.key)
            unique.append(d)
    return unique


def fallback_mask(url: str) -> str:
    """For a URL Apprise cannot parse: the scheme only (slack://, discord://, pbul:// ... carry the token
    where a host would be; the caller says which URL by its place in the config)."""
    scheme = url.partition("://")[0] if "://" in url else ""
    # not urlsplit: it raises on a stray "[" (e.g. in a password), and this is the error path
    return f"{scheme}://{MASK}" if scheme.isalnum() and len(scheme) <= 32 else MASK


#: Query keys whose values are credentials; `+` (headers), `-` (query parameters) and `:` (payload
#: fields) of Apprise's json://, xml:// and form:// are where webhooks take API keys, and Apprise's
#: privacy form shows them unmasked.
_SECRET_KEY = re.compile(r"^[+\-:]|token|pass|secret|key|auth|sig|cred", re.IGNORECASE)


def _query_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(urllib.parse.unquote_plus(key)))


def _mask_query(url: str) -> str:
    """`url` with the values of secret-looking query keys masked."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    items = []
    for item in parts.query.split("&"):
        key, eq, value = item.partition("=")
        items.append(f"{key}={MASK}" if eq and value and _query_secret(key) else item)
    return urllib.parse.urlunsplit(parts._replace(query="&".join(items)))


def mask_text(text: str, url: str, masked: str) -> str:
    """Replace the whole URL, then each secret-looking part of it (password, path tokens, query values)."""
    if not text:
        return text
    text = text.replace(url, masked)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not a URL urllib can split (a stray "["): nothing more to recognise in it
        return text
    secrets = {parts.password or ""}
    secrets.update(segment for segment in parts.path.split("/") if len(segment) >= 6)
    if parts.username and len(parts.username) >= 6 and parts.scheme not in ("mailto", "mailtos"):
        secrets.add(parts.username)  # many schemes carry a token as the "user"
    if parts.hostname and parts.scheme in ("slack", "discord", "tgram", "pover", "msteams"):
        secrets.add(parts.hostname)  # token-as-host schemes
    for item in parts.query.split("&"):
        key, _, raw = item.partition("=")
        value = urllib.parse.unquote_plus(raw)
        if len(value) >= 6 or (value and _query_secret(key)):
            # as written, decoded, and re-encoded: an error may quote the URL in any of these forms
            secrets.update((raw, value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text

"""Where notifications go: Apprise URLs with routing, and masking their secrets everywhere they are shown.

A destination's URL holds credentials (a Slack token, an SMTP password), so the
URL itself is only ever handed to Apprise. Everything a person or a log sees
is `masked`, which Apprise builds itself (`url(privacy=True)`) and which this
module's `mask_text` also scrubs from error messages.
"""

from __future__ import annotations

import hashlib
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
    return Destination(url=url, masked=plugin.url(privacy=True), scheme=scheme[:32], min_severity=min_severity,
                       models=frozenset(models), kinds=frozenset(kinds))


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
    """For a URL Apprise cannot parse: the scheme and host only."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/{MASK}" if parts.scheme else MASK


def mask_text(text: str, url: str, masked: str) -> str:
    """Replace the whole URL, then each secret-looking part of it (password, path tokens, query values)."""
    if not text:
        return text
    text = text.replace(url, masked)
    parts = urllib.parse.urlsplit(url)
    secrets = {parts.password or ""}
    secrets.update(segment for segment in parts.path.split("/") if len(segment) >= 6)
    if parts.username and len(parts.username) >= 6 and parts.scheme not in ("mailto", "mailtos"):
        secrets.add(parts.username)  # many schemes carry a token as the "user"
    if parts.hostname and parts.scheme in ("slack", "discord", "tgram", "pover", "msteams"):
        secrets.add(parts.hostname)  # token-as-host schemes
    for _key, value in urllib.parse.parse_qsl(parts.query):
        if len(value) >= 6:
            secrets.add(value)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text

"""Secrets in Apprise URLs never show: not in a destination's masked form (status, logs, test results),
not in a delivery error, not in the error for a URL Apprise cannot use."""

from __future__ import annotations

import urllib.parse

import pytest

from modelctl_server.config import ConfigError
from modelctl_server.notify.destinations import parse_destination

#: (URL, its secrets): custom headers (+), query parameters (-) and payload mappings (:) are where
#: webhook receivers commonly take their API keys, and Apprise's privacy form shows them as they are.
SENDABLE = [
    ("json://alice:S3cretPass@hooks.example.com:8080/path/to/hook", ["S3cretPass"]),
    ("jsons://hooks.example.com/hook?+Authorization=Bearer%20tok3nValue99", ["tok3nValue99"]),
    ("json://hooks.example.com/hook?-apikey=qwerty12345", ["qwerty12345"]),
    ("json://hooks.example.com/hook?:token=abcdef123456", ["abcdef123456"]),
    ("xml://hooks.example.com/x?+X-Api-Key=xmlKey0987", ["xmlKey0987"]),
    ("form://hooks.example.com/x?-token=formT0ken55", ["formT0ken55"]),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", ["TIiajkdnlazkcOXrIdevi7FQ", "A1BRTD4JD"]),
    ("mailto://user:MyMailPw1@smtp.example.com?to=ops@example.com", ["MyMailPw1"]),
    ("mailtos://smtp.example.com?user=bob&pass=Sm7pPassword&to=ops@example.com", ["Sm7pPassword"]),
    ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", ["JHMHI8qBe7bk2ZwO5U711o3dV_js"]),
    ("ntfy://user:NtfyPass9@ntfy.example.com/topic", ["NtfyPass9"]),
]

#: URLs Apprise refuses (a typo in the scheme, a malformed token): their host is often the token itself.
REFUSED = [
    ("pushbullet://o.gn5kj6nfhv736I7jC3cj3QLRiyhgl98b", ["gn5kj6nfhv736I7jC3cj3QLRiyhgl98b"]),
    ("slakc://xoxb-1234-4ddbc191d40ee098cbaae6f3523ada2d", ["4ddbc191d40ee098cbaae6f3523ada2d"]),  # typo
    ("discord://4174216298WEBHOOKID", ["4174216298webhookid"]),
    ("msteams://TokenAAAAAAAA/TokenBBBBBBBB/", ["tokenaaaaaaaa", "TokenBBBBBBBB"]),
]


def _leaks(text: str, secrets: list[str]) -> list[str]:
    low = text.lower()
    return [s for s in secrets if s.lower() in low or urllib.parse.quote(s).lower() in low]


@pytest.mark.parametrize("url,secrets", SENDABLE)
def test_the_masked_form_and_errors_hide_every_secret(url: str, secrets: list[str]) -> None:
    d = parse_destination(url)
    assert not _leaks(d.masked, secrets), d.masked
    assert not _leaks(repr(d), secrets)
    error = f"sending to {url} failed; to {urllib.parse.unquote(url)}: {d.masked} refused the connection"
    assert not _leaks(d.scrub(error), secrets), d.scrub(error)


@pytest.mark.parametrize("url,secrets", REFUSED)
def test_a_url_apprise_refuses_is_reported_without_its_secrets(url: str, secrets: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_destination(url, where="notifications.urls[0]")
    assert not _leaks(str(err.value), secrets), str(err.value)
    assert "notifications.urls[0]" in str(err.value)


@pytest.mark.parametrize("url", ["json://user:pa[ss@127.0.0.1:9/x", "json://[::1", "no scheme at all"])
def test_a_url_urllib_cannot_split_is_a_config_error_not_a_crash(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_destination(url, where="notifications.urls[1]")
    assert "pa[ss" not in str(err.value) and "notifications.urls[1]" in str(err.value)

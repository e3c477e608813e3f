"""`modelctl.TrafficRouter`: sticky weighted choice over the live split, and life without the controller."""

from __future__ import annotations

import random
import socket
from collections import Counter
from typing import Iterator

import pytest

import modelctl
from modelctl import NoTrafficSplitError, TrafficRouter
from modelctl._routing import SplitTable, key_point

from rollout_support import RECONCILE_INTERVAL, eventually, fast_server, first_step, make_live, register

KEYS = [f"user-{n}" for n in range(20_000)]


def _assign(weights: dict[str, float], salt: str = "fraud") -> dict[str, str]:
    table = SplitTable.from_weights(weights)
    assert table is not None
    return {key: table.version_at(key_point(key, salt)) for key in KEYS}


# --- the choice (no server) --------------------------------------------------------------------------------


def test_the_key_hash_is_stable_across_processes_and_releases() -> None:
    # Pinned: a changed hash would reshuffle every user of every service on upgrade.
    assert key_point("user-42", "fraud") == pytest.approx(13.458265331400657, abs=1e-9)
    assert 0 <= min(key_point(k) for k in KEYS) and max(key_point(k) for k in KEYS) < 100


def test_weights_are_normalised_and_zero_weights_get_nothing() -> None:
    table = SplitTable.from_weights({"b": 3, "a": 1, "c": 0})
    assert table is not None and table.versions == ("a", "b")
    assert table.weights() == pytest.approx({"a": 25.0, "b": 75.0})
    assert SplitTable.from_weights({}) is None and SplitTable.from_weights({"a": 0.0}) is None
    assert SplitTable.from_weights({"a": float("nan"), "b": 1}).versions == ("b",)  # type: ignore[union-attr]


@pytest.mark.parametrize("weights", [{"1": 90, "2": 10}, {"1": 50, "2": 50}, {"1": 70, "2": 20, "3": 10},
                                     {"1": 99.5, "2": 0.5}])
def test_keys_spread_by_weight(weights: dict[str, float]) -> None:
    counts = Counter(_assign(weights).values())
    for version, weight in weights.items():
        assert counts[version] / len(KEYS) * 100 == pytest.approx(weight, abs=1.0)


def test_the_same_key_gets_the_same_version_while_the_split_is_unchanged() -> None:
    assert _assign({"1": 90, "2": 10}) == _assign({"2": 10, "1": 90})  # map order is no input
    assert _assign({"1": 9, "2": 1}) == _assign({"1": 90, "2": 10})  # nor is the scale


@pytest.mark.parametrize("before, after", [(5, 10), (10, 25), (25, 50), (50, 100), (0.5, 5)])
def test_a_growing_canary_takes_keys_only_from_the_stable_version(before: float, after: float) -> None:
    was = _assign({"1": 100 - before, "2": before})
    now = _assign({"1": 100 - after, "2": after})
    moved = [key for key in KEYS if was[key] != now[key]]
    assert all((was[key], now[key]) == ("1", "2") for key in moved)
    assert len(moved) / len(KEYS) * 100 == pytest.approx(after - before, abs=1.0)


def test_a_shrinking_canary_gives_keys_back_only_to_the_stable_version() -> None:
    was, now = _assign({"1": 75, "2": 25}), _assign({"1": 95, "2": 5})
    assert {(was[key], now[key]) for key in KEYS if was[key] != now[key]} == {("2", "1")}


def test_different_models_put_different_users_in_their_canaries() -> None:
    fraud = {k for k, v in _assign({"1": 90, "2": 10}, salt="fraud").items() if v == "2"}
    churn = {k for k, v in _assign({"1": 90, "2": 10}, salt="churn").items() if v == "2"}
    assert len(fraud & churn) / len(fraud) == pytest.approx(0.10, abs=0.03)  # independent, not the same users


# --- the router against a controller -----------------------------------------------------------------------


@pytest.fixture
def rollout_server(server_factory):  # type: ignore[no-untyped-def]
    return fast_server(server_factory)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def canary_at_5(rollout_server) -> Iterator[modelctl.Client]:  # type: ignore[no-untyped-def]
    """fraud 1 live, fraud 2 a canary at its first step (5 %) with no traffic, so it stays there."""
    with modelctl.Client(rollout_server.address, token=rollout_server.admin_token) as client:
        register(client, "fraud", "1", "2")
        make_live(client, "fraud", "1")
        first_step(client, client.deploy("fraud", "2", "canary", interval="100ms", min_samples=5,
                                         progress_deadline="5m").id)
        yield client


def _router(server, **kwargs) -> TrafficRouter:  # type: ignore[no-untyped-def]
    options = modelctl.ConnectionOptions(address=server.address, token=server.admin_token)
    return TrafficRouter("fraud", options=options, initial_backoff=0.05, max_backoff=0.2, **kwargs)


def test_the_router_follows_the_live_split(rollout_server, canary_at_5: modelctl.Client) -> None:  # type: ignore[no-untyped-def]
    changes: list[dict[str, float]] = []
    with _router(rollout_server, on_change=lambda split: changes.append(dict(split.weights))) as router:
        assert router.wait_ready(10) and router.connected
        assert router.weights["2"] == 5
        counts = Counter(router.choose(key) for key in KEYS)
        assert counts["2"] / len(KEYS) == pytest.approx(0.05, abs=0.01)
        assert Counter(router.choose() for _ in range(20_000))["2"] / 20_000 == pytest.approx(0.05, abs=0.01)
        sticky = {key: router.choose(key) for key in KEYS[:500]}

        (deployment,) = canary_at_5.iter_deployments(model="fraud", states=["progressing"])
        canary_at_5.promote(deployment.id)
        assert router.wait_until(lambda split: split.weights["2"] == 100, 10)
        assert {router.choose(key) for key in KEYS[:500]} == {"2"}
        assert sticky != {key: router.choose(key) for key in KEYS[:500]}
    assert changes[0]["2"] == 5 and changes[-1]["2"] == 100


def test_the_last_known_split_is_kept_while_the_controller_is_down_and_changes_arrive_after_it_returns(
        server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import ThreadedServer, make_settings

    env = {"MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL": RECONCILE_INTERVAL}
    first = ThreadedServer(make_settings(tmp_path / "data", **env))  # stopped by this test, not the factory
    try:
        with modelctl.Client(first.address, token=first.admin_token) as client:
            register(client, "fraud", "1", "2")
            make_live(client, "fraud", "1")
            canary = client.deploy("fraud", "2", "canary", interval="100ms", min_samples=5,
                                   progress_deadline="5m")
            first_step(client, canary.id)
        router = _router(first)
        assert router.wait_ready(10)
        before = {key: router.choose(key) for key in KEYS[:2000]}
    finally:
        first.stop()
    try:
        # Poll until the router has noticed: its stream ended and reconnecting fails.
        eventually(lambda: not router.connected and router.last_error is not None,
                   what="the router to notice")
        assert isinstance(router.last_error, modelctl.errors.UnavailableError)
        assert {key: router.choose(key) for key in KEYS[:2000]} == before  # the last known split, unchanged

        address = {"MODELCTL_SERVER_GRPC_ADDRESS": first.address}
        second = server_factory(make_settings(tmp_path / "data", **address, **env))
        with modelctl.Client(second.address, token=second.admin_token) as client:
            # gRPC shares connections between channels: until its reconnect backoff ends, calls may fail fast.
            eventually(lambda: _abort(client, canary.id), what="the restarted controller to answer")
        assert router.wait_until(lambda split: split.weights.get("2", 0) == 0, 15)
        assert router.connected
        assert {router.choose(key) for key in KEYS[:2000]} == {"1"}
    finally:
        router.close()


def _abort(client: modelctl.Client, deployment_id: str) -> bool:
    try:
        client.abort(deployment_id, "found a bug while the controller was down")
    except modelctl.errors.UnavailableError:
        return False
    return True


def test_before_any_split_choose_raises_or_returns_the_default() -> None:
    options = modelctl.ConnectionOptions(address=f"127.0.0.1:{_free_port()}", retry=None)
    with TrafficRouter("fraud", options=options, initial_backoff=0.05, max_backoff=0.1) as router:
        assert router.wait_ready(0.2) is False
        with pytest.raises(NoTrafficSplitError, match="'fraud'"):
            router.choose("user-1")
        router.default_version = "1.4.0"
        assert router.choose("user-1") == router.choose() == "1.4.0"
    assert not router._thread.is_alive()  # close() stops the thread


def test_a_model_without_a_live_version_has_no_split_yet(rollout_server) -> None:  # type: ignore[no-untyped-def]
    with modelctl.Client(rollout_server.address, token=rollout_server.admin_token) as client:
        register(client, "fraud", "1")
    with _router(rollout_server, default_version="fallback") as router:
        assert router.wait_until(lambda split: True, 10) and router.connected
        assert router.weights == {} or sum(router.weights.values()) == 0
        assert router.choose("user-1") == "fallback"


def test_a_failing_on_change_callback_does_not_stop_routing(rollout_server, canary_at_5) -> None:  # type: ignore[no-untyped-def]
    def explode(split: object) -> None:
        raise RuntimeError("boom")

    with _router(rollout_server, on_change=explode) as router:
        assert router.wait_ready(10)
        assert router.choose("user-7") in {"1", "2"}


async def test_the_async_router(rollout_server, canary_at_5: modelctl.Client) -> None:  # type: ignore[no-untyped-def]
    options = modelctl.ConnectionOptions(address=rollout_server.address, token=rollout_server.admin_token)
    async with modelctl.AsyncTrafficRouter("fraud", options=options, initial_backoff=0.05) as router:
        assert await router.wait_ready(10)
        assert router.weights["2"] == 5
        with TrafficRouter("fraud", options=options) as threaded:
            assert threaded.wait_ready(10)
            assert all(router.choose(key) == threaded.choose(key) for key in KEYS[:2000])
        random.seed(1)
        expected = random.random()
        random.seed(1)
        router.choose()
        assert random.random() == expected  # the router has its own RNG: it leaves the global one alone

"""Deployment calls: deploy, roll back, read, watch, control, and wait for the outcome.

`DeploymentCalls` (sync) and `AsyncDeploymentCalls` hold the same methods with
the same signatures. Requests are built by `_deployment_requests`.

`wait_for_deployment` is the robust way to follow a rollout: it watches the
event stream, and when the connection breaks (controller restarted, network
blip) it reconnects with backoff and resumes after the last event it saw
(`after_seq`), so `on_event` sees every event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Awaitable, Callable, Iterable, Iterator

import grpc

from modelctl.v1 import deployment_pb2 as _pb

from . import errors
from ._backoff import Backoff
from ._calls import AsyncCaller, AsyncStream, Stream, SyncCaller
from ._deployment_requests import (
    DurationLike,
    LimitLike,
    StateLike,
    StrategyLike,
    deployment_params,
    duration_seconds,
    is_final,
    list_deployments_request,
    state_name,
    strategy_value,
)

#: How long `wait_for_deployment` keeps trying to reconnect to a controller that went away.
DEFAULT_RECONNECT_TIMEOUT = 60.0
#: Deadline of the last look at a deployment after a wait ran out of time.
_LAST_LOOK_TIMEOUT = 5.0

EventCallback = Callable[[_pb.DeploymentEvent], None]
AsyncEventCallback = Callable[[_pb.DeploymentEvent], "Awaitable[None] | None"]


def deploy_request(model: str, version: str, strategy: StrategyLike,
                   **params: object) -> _pb.DeployModelRequest:
    return _pb.DeployModelRequest(model=model, version=version, strategy=strategy_value(strategy),
                                  params=deployment_params(**params))  # type: ignore[arg-type]


def _action(deployment_id: str, reason: str) -> _pb.DeploymentActionRequest:
    return _pb.DeploymentActionRequest(id=deployment_id, reason=reason)


def _transient(exc: errors.ModelctlError) -> bool:
    """Worth reconnecting: the controller is down or restarting, or the stream was cut under us."""
    return exc.retriable or exc.code is grpc.StatusCode.CANCELLED


class _Wait:
    """Bookkeeping of one `wait_for_deployment`: overall deadline, last event seen, reconnect pacing."""

    def __init__(self, deployment_id: str, timeout: DurationLike | None,
                 reconnect_timeout: float | None) -> None:
        self.deployment_id = deployment_id
        self.timeout = None if timeout is None else duration_seconds(timeout, "timeout")
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.last_seq = 0
        self.backoff = Backoff(give_up_after=reconnect_timeout)
        #: Whether the controller ever answered: a wrong address fails at once, not after a minute.
        self.reached = False

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def is_new(self, event: _pb.DeploymentEvent) -> bool:
        """False for an event replayed twice around a reconnect."""
        self.reached = True
        if event.seq <= self.last_seq:
            return False
        self.last_seq = event.seq
        self.backoff.succeeded()
        return True

    def request(self) -> _pb.WatchDeploymentRequest:
        return _pb.WatchDeploymentRequest(id=self.deployment_id, after_seq=self.last_seq)

    def pause(self, exc: errors.ModelctlError | None) -> float:
        """Seconds to wait before watching again; re-raises `exc` if final or reconnecting is spent."""
        if exc is not None and (not _transient(exc) or not self.reached):
            raise exc
        if not self.backoff.failed() and exc is not None:
            raise exc
        remaining = self.remaining()
        delay = self.backoff.delay()
        return delay if remaining is None else min(delay, remaining)

    def timed_out(self, last: _pb.Deployment | None) -> errors.WaitTimeoutError:
        where = f" (still {state_name(last.state)}, step {last.step})" if last is not None else ""
        return errors.WaitTimeoutError(
            f"deployment {self.deployment_id} did not reach a final state within {self.timeout:g}s{where}",
            deployment=last)


class DeploymentCalls(SyncCaller):
    def deploy(self, model: str, version: str, strategy: StrategyLike = "canary", *,
               params: _pb.DeploymentParams | None = None, steps: Iterable[float] | str | None = None,
               interval: DurationLike | None = None, min_samples: int | None = None,
               failure_limit: int | None = None, progress_deadline: DurationLike | None = None,
               bake_time: DurationLike | None = None, max_error_rate: float | None = None,
               max_latency_p95_ms: float | None = None, max_drift_score: float | None = None,
               max_error_rate_increase: float | None = None, relative_alpha: float | None = None,
               critical_gates: Iterable[str] | None = None, max_unavailable: LimitLike | None = None,
               max_surge: LimitLike | None = None, timeout: float | None = None) -> _pb.Deployment:
        """Start rolling `version` of `model` out; returns the new deployment (PENDING or beyond).

        `strategy` is "immediate", "blue-green", "canary" or "rolling" (or the enum value).
        Every parameter left None takes the server's configured default. Durations are seconds,
        timedeltas or text ("30s", "500ms"); `max_unavailable`/`max_surge` a count or "25%".
        `params` may carry a full `DeploymentParams`; keywords given here are written over it.
        FAILED_PRECONDITION while another deployment of the model is active, or for the live version.
        """
        request = deploy_request(
            model, version, strategy, params=params, steps=steps, interval=interval, min_samples=min_samples,
            failure_limit=failure_limit, progress_deadline=progress_deadline, bake_time=bake_time,
            max_error_rate=max_error_rate, max_latency_p95_ms=max_latency_p95_ms,
            max_drift_score=max_drift_score, max_error_rate_increase=max_error_rate_increase,
            relative_alpha=relative_alpha,
            critical_gates=critical_gates, max_unavailable=max_unavailable, max_surge=max_surge)
        return self._call(self._stub.DeployModel, request, timeout)

    def rollback(self, model: str, to_version: str | None = None, reason: str = "", *,
                 timeout: float | None = None) -> _pb.Deployment:
        """An immediate deployment back to the model's previous version, or to `to_version`."""
        request = _pb.RollbackModelRequest(model=model, to_version=to_version or "", reason=reason)
        return self._call(self._stub.RollbackModel, request, timeout)

    def get_deployment(self, deployment_id: str, *, timeout: float | None = None) -> _pb.Deployment:
        """The deployment with its newest gate evaluations (`.evaluations`, newest first)."""
        return self._call(self._stub.GetDeployment, _pb.GetDeploymentRequest(id=deployment_id), timeout)

    def list_deployments(self, *, model: str = "", states: Iterable[StateLike] = (), page_size: int = 0,
                         page_token: str = "", timeout: float | None = None) -> _pb.ListDeploymentsResponse:
        """One page of deployments, newest first; `states` filters ("progressing", ...)."""
        request = list_deployments_request(model=model, states=states, page_size=page_size,
                                           page_token=page_token)
        return self._call(self._stub.ListDeployments, request, timeout)

    def iter_deployments(self, *, model: str = "", states: Iterable[StateLike] = (), page_size: int = 0,
                         timeout: float | None = None) -> Iterator[_pb.Deployment]:
        states = tuple(states)
        return self._pages(
            lambda token: self.list_deployments(model=model, states=states, page_size=page_size,
                                                page_token=token, timeout=timeout),
            lambda page: page.deployments)

    def watch_deployment(self, deployment_id: str, after_seq: int = 0, *,
                         timeout: float | None = None) -> Stream[_pb.DeploymentEvent]:
        """The deployment's events after `after_seq` (replayed), then live ones; ends at a final state.

        No reconnection: see `wait_for_deployment` for a watch that survives a controller restart.
        """
        return self._stream(self._stub.WatchDeployment,
                            _pb.WatchDeploymentRequest(id=deployment_id, after_seq=after_seq), timeout)

    def promote(self, deployment_id: str, reason: str = "", *,
                timeout: float | None = None) -> _pb.Deployment:
        """Skip the remaining steps: 100 % on the new version now."""
        return self._call(self._stub.PromoteDeployment, _action(deployment_id, reason), timeout)

    def pause(self, deployment_id: str, reason: str = "", *, timeout: float | None = None) -> _pb.Deployment:
        """Hold the deployment at its current step; traffic stays as it is."""
        return self._call(self._stub.PauseDeployment, _action(deployment_id, reason), timeout)

    def resume(self, deployment_id: str, reason: str = "", *, timeout: float | None = None) -> _pb.Deployment:
        return self._call(self._stub.ResumeDeployment, _action(deployment_id, reason), timeout)

    def abort(self, deployment_id: str, reason: str = "", *, timeout: float | None = None) -> _pb.Deployment:
        """Traffic back on the previous version; the deployment ends ABORTED."""
        return self._call(self._stub.AbortDeployment, _action(deployment_id, reason), timeout)

    def wait_for_deployment(self, deployment_id: str, timeout: DurationLike | None = None, *,
                            on_event: EventCallback | None = None,
                            reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT) -> _pb.Deployment:
        """Block until the deployment reaches a final state and return it (check `.state`).

        `on_event` sees every event once, in order, from the first. Raises `errors.WaitTimeoutError`
        (a `DeadlineExceededError`, carrying the last known deployment) after `timeout`, and the
        connection error when the controller stays unreachable for `reconnect_timeout` seconds.
        """
        wait = _Wait(deployment_id, timeout, reconnect_timeout)
        while True:
            failure: errors.ModelctlError | None = None
            try:
                with self._stream(self._stub.WatchDeployment, wait.request(), wait.remaining()) as events:
                    for event in events:
                        if wait.is_new(event) and on_event is not None:
                            on_event(event)
                        if is_final(event.state):
                            break
                deployment = self.get_deployment(deployment_id, timeout=wait.remaining() or None)
                wait.reached = True
                if is_final(deployment.state):
                    return deployment
                # The stream ended early (the controller is shutting down): resume where it stopped.
            except errors.ModelctlError as exc:
                if wait.expired():
                    raise wait.timed_out(self._last_look(deployment_id)) from None
                failure = exc
            delay = wait.pause(failure)
            if wait.expired():
                raise wait.timed_out(self._last_look(deployment_id))
            time.sleep(delay)

    def _last_look(self, deployment_id: str) -> _pb.Deployment | None:
        try:
            return self.get_deployment(deployment_id, timeout=_LAST_LOOK_TIMEOUT)
        except errors.ModelctlError:
            return None


class AsyncDeploymentCalls(AsyncCaller):
    async def deploy(self, model: str, version: str, strategy: StrategyLike = "canary", *,
                     params: _pb.DeploymentParams | None = None, steps: Iterable[float] | str | None = None,
                     interval: DurationLike | None = None, min_samples: int | None = None,
                     failure_limit: int | None = None, progress_deadline: DurationLike | None = None,
                     bake_time: DurationLike | None = None, max_error_rate: float | None = None,
                     max_latency_p95_ms: float | None = None, max_drift_score: float | None = None,
                     max_error_rate_increase: float | None = None, relative_alpha: float | None = None,
                     critical_gates: Iterable[str] | None = None, max_unavailable: LimitLike | None = None,
                     max_surge: LimitLike | None = None, timeout: float | None = None) -> _pb.Deployment:
        request = deploy_request(
            model, version, strategy, params=params, steps=steps, interval=interval, min_samples=min_samples,
            failure_limit=failure_limit, progress_deadline=progress_deadline, bake_time=bake_time,
            max_error_rate=max_error_rate, max_latency_p95_ms=max_latency_p95_ms,
            max_drift_score=max_drift_score, max_error_rate_increase=max_error_rate_increase,
            relative_alpha=relative_alpha,
            critical_gates=critical_gates, max_unavailable=max_unavailable, max_surge=max_surge)
        return await self._call(self._stub.DeployModel, request, timeout)

    async def rollback(self, model: str, to_version: str | None = None, reason: str = "", *,
                       timeout: float | None = None) -> _pb.Deployment:
        request = _pb.RollbackModelRequest(model=model, to_version=to_version or "", reason=reason)
        return await self._call(self._stub.RollbackModel, request, timeout)

    async def get_deployment(self, deployment_id: str, *, timeout: float | None = None) -> _pb.Deployment:
        return await self._call(self._stub.GetDeployment, _pb.GetDeploymentRequest(id=deployment_id), timeout)

    async def list_deployments(self, *, model: str = "", states: Iterable[StateLike] = (), page_size: int = 0,
                               page_token: str = "",
                               timeout: float | None = None) -> _pb.ListDeploymentsResponse:
        request = list_deployments_request(model=model, states=states, page_size=page_size,
                                           page_token=page_token)
        return await self._call(self._stub.ListDeployments, request, timeout)

    def iter_deployments(self, *, model: str = "", states: Iterable[StateLike] = (), page_size: int = 0,
                         timeout: float | None = None) -> AsyncIterator[_pb.Deployment]:
        states = tuple(states)
        return self._pages(
            lambda token: self.list_deployments(model=model, states=states, page_size=page_size,
                                                page_token=token, timeout=timeout),
            lambda page: page.deployments)

    def watch_deployment(self, deployment_id: str, after_seq: int = 0, *,
                         timeout: float | None = None) -> AsyncStream[_pb.DeploymentEvent]:
        """`async for event in client.watch_deployment(id): ...`; ends at a final state."""
        return self._stream(self._stub.WatchDeployment,
                            _pb.WatchDeploymentRequest(id=deployment_id, after_seq=after_seq), timeout)

    async def promote(self, deployment_id: str, reason: str = "", *,
                      timeout: float | None = None) -> _pb.Deployment:
        return await self._call(self._stub.PromoteDeployment, _action(deployment_id, reason), timeout)

    async def pause(self, deployment_id: str, reason: str = "", *,
                    timeout: float | None = None) -> _pb.Deployment:
        return await self._call(self._stub.PauseDeployment, _action(deployment_id, reason), timeout)

    async def resume(self, deployment_id: str, reason: str = "", *,
                     timeout: float | None = None) -> _pb.Deployment:
        return await self._call(self._stub.ResumeDeployment, _action(deployment_id, reason), timeout)

    async def abort(self, deployment_id: str, reason: str = "", *,
                    timeout: float | None = None) -> _pb.Deployment:
        return await self._call(self._stub.AbortDeployment, _action(deployment_id, reason), timeout)

    async def wait_for_deployment(self, deployment_id: str, timeout: DurationLike | None = None, *,
                                  on_event: AsyncEventCallback | None = None,
                                  reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT,
                                  ) -> _pb.Deployment:
        """As `Client.wait_for_deployment`; `on_event` may be a plain function or a coroutine function."""
        wait = _Wait(deployment_id, timeout, reconnect_timeout)
        while True:
            failure: errors.ModelctlError | None = None
            try:
                stream = self._stream(self._stub.WatchDeployment, wait.request(), wait.remaining())
                async with stream as events:
                    async for event in events:
                        if wait.is_new(event) and on_event is not None:
                            result = on_event(event)
                            if asyncio.iscoroutine(result):
                                await result
                        if is_final(event.state):
                            break
                deployment = await self.get_deployment(deployment_id, timeout=wait.remaining() or None)
                wait.reached = True
                if is_final(deployment.state):
                    return deployment
            except errors.ModelctlError as exc:
                if wait.expired():
                    raise wait.timed_out(await self._last_look(deployment_id)) from None
                failure = exc
            delay = wait.pause(failure)
            if wait.expired():
                raise wait.timed_out(await self._last_look(deployment_id))
            await asyncio.sleep(delay)

    async def _last_look(self, deployment_id: str) -> _pb.Deployment | None:
        try:
            return await self.get_deployment(deployment_id, timeout=_LAST_LOOK_TIMEOUT)
        except errors.ModelctlError:
            return None

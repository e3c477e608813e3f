"""`modelctl.PipelineAgent`: what a pipeline service runs to be steered by modelctl.

    agent = modelctl.PipelineAgent("trainer", models=["fraud"])

    @agent.handler("optimize")
    def optimize(ctx: modelctl.CommandContext) -> modelctl.CommandResult:
        ctx.progress(10, "searching hyper-parameters")
        version = train_and_register(ctx.model, ctx.parameters)   # e.g. client.register_model(...)
        return modelctl.CommandResult(f"auc 0.93 with {ctx.parameters}", version=version)

    agent.run()            # or agent.start() / agent.stop() around your own code

It registers the pipeline, reports its status every `report_interval` (the
controller's suggestion unless given), holds `WatchPipelineCommands` open and
dispatches each command to the handler of its kind, one at a time, in the order
sent. A handler returns a `CommandResult` (or a string, or None) to end the
command SUCCEEDED, and raises to end it FAILED with the exception as the error.
A command with no handler ends FAILED saying so.

Exactly once: a command is acknowledged before its handler runs, and the
controller refuses a second acknowledgement, so a command redelivered after a
reconnect or a restart of this process (it was delivered, not acknowledged)
runs once, and one already acknowledged never runs again. The connection is
re-established with exponential back-off (`_backoff.Backoff`) whenever it
breaks; results are retried the same way until the controller has them.

`AsyncPipelineAgent` is the same for asyncio programs; its handlers may be
coroutine functions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Union

from modelctl.v1 import pipeline_pb2 as _pb

from . import errors
from ._backoff import Backoff
from ._pipelines import KindLike, PipelineStateLike, kind_name, kind_value, pipeline_state_value
from .aio import AsyncClient
from .client import Client

log = logging.getLogger("modelctl.agent")

#: How many handled command ids an agent remembers to drop redeliveries within one process.
_REMEMBERED = 10_000


@dataclass(frozen=True)
class CommandResult:
    """What a handler did: `result` in words; `version` the model version it registered, which a command
    sent with then_deploy rolls out."""

    result: str = ""
    version: str = ""


@dataclass
class _Status:
    state: int = _pb.PIPELINE_STATE_IDLE
    job: str = ""
    progress: float = 0.0
    details: dict[str, str] = field(default_factory=dict)
    last_result: _pb.PipelineResult | None = None


@dataclass
class CommandContext:
    """One command, as a handler sees it."""

    command: _pb.PipelineCommand
    _report: Callable[[float, str | None, PipelineStateLike | None], Any]

    @property
    def id(self) -> str:
        return self.command.id

    @property
    def kind(self) -> str:
        """"optimize", "reload-config", ..."""
        return kind_name(self.command.kind)

    @property
    def model(self) -> str:
        return self.command.model

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.command.parameters)

    @property
    def config(self) -> Any:
        """RELOAD_CONFIG: the configuration, parsed from JSON (the controller checked it is JSON)."""
        return json.loads(self.command.config) if self.command.config else None

    def progress(self, percent: float, job: str | None = None, state: PipelineStateLike | None = None) -> Any:
        """Report progress now (0-100), and optionally the job and the pipeline state; the CLI shows it."""
        return self._report(percent, job, state)


Handler = Callable[[CommandContext], Union[CommandResult, str, None, Awaitable[Union[CommandResult, str, None]]]]


class _AgentBase:
    def __init__(self, name: str, *, models: tuple[str, ...] | list[str] = (), version: str = "",
                 labels: Mapping[str, str] | None = None, handlers: Mapping[KindLike, Handler] | None = None,
                 report_interval: float | None = None, max_backoff: float = 5.0) -> None:
        self.name = name
        self.models = list(models)
        self.version = version
        self.labels = dict(labels or {})
        self.report_interval = report_interval
        self._max_backoff = max_backoff
        self._handlers: dict[int, Handler] = {}
        for kind, fn in (handlers or {}).items():
            self.on(kind, fn)
        self.status = _Status()
        #: Command ids this process has taken on (acknowledged or seen acknowledged): redeliveries are dropped.
        self._handled: OrderedDict[str, None] = OrderedDict()

    def on(self, kind: KindLike, fn: Handler) -> None:
        """Handle commands of `kind` ("optimize", "retrain", "pause", "resume", "reload-config") with `fn`."""
        self._handlers[kind_value(kind)] = fn

    def handler(self, kind: KindLike) -> Callable[[Handler], Handler]:
        """Decorator form of `on`."""
        def register(fn: Handler) -> Handler:
            self.on(kind, fn)
            return fn
        return register

    def set_status(self, state: PipelineStateLike | None = None, job: str | None = None,
                   progress: float | None = None, *, details: Mapping[str, str] | None = None,
                   last_result: _pb.PipelineResult | None = None) -> None:
        """Change what the next status report says (reported at the next interval)."""
        if state is not None:
            self.status.state = pipeline_state_value(state)
        if job is not None:
            self.status.job = job
        if progress is not None:
            self.status.progress = float(progress)
        if details is not None:
            self.status.details = dict(details)
        if last_result is not None:
            self.status.last_result = last_result

    def _backoff(self) -> Backoff:
        return Backoff(maximum=self._max_backoff)

    def _is_new(self, command: _pb.PipelineCommand) -> bool:
        if command.id in self._handled:
            return False
        self._handled[command.id] = None
        while len(self._handled) > _REMEMBERED:
            self._handled.popitem(last=False)
        return True

    def _forget(self, command_id: str) -> None:
        self._handled.pop(command_id, None)

    def _status_args(self) -> dict[str, Any]:
        s = self.status
        return {"job": s.job, "progress": s.progress, "details": s.details, "last_result": s.last_result}

    def _interval(self, response: _pb.RegisterPipelineResponse) -> None:
        if self.report_interval is None:
            suggested = response.report_interval.ToTimedelta().total_seconds()
            self.report_interval = suggested if suggested > 0 else 10.0


def _outcome(value: CommandResult | str | None) -> CommandResult:
    if isinstance(value, CommandResult):
        return value
    return CommandResult(result="" if value is None else str(value))


def _retriable(exc: errors.ModelctlError) -> bool:
    return exc.retriable or exc.code.name in ("CANCELLED", "DEADLINE_EXCEEDED")


class PipelineAgent(_AgentBase):
    """The agent for threaded programs. Give it a `client`, or it builds one from `address` and `token`
    (default: MODELCTL_ADDR and MODELCTL_TOKEN)."""

    def __init__(self, name: str, *, client: Client | None = None, address: str | None = None,
                 token: str | None = None, **options: Any) -> None:
        super().__init__(name, **options)
        self._own_client = client is None
        self.client = client or Client(address, token=token)
        self._stop = threading.Event()
        self._stream: Any = None
        self._threads: list[threading.Thread] = []

    def run(self) -> None:
        """Register, report and handle commands until `stop()` (blocking)."""
        self._register()
        reporter = threading.Thread(target=self._report_loop, name=f"{self.name}-status", daemon=True)
        reporter.start()
        try:
            self._command_loop()
        finally:
            self._stop.set()
            reporter.join(5)

    def start(self) -> PipelineAgent:
        """`run()` in a background thread."""
        thread = threading.Thread(target=self.run, name=f"{self.name}-agent", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.cancel()
        for thread in self._threads:
            thread.join(10)
        if self._own_client:
            self.client.close()

    def report(self) -> None:
        """Report the status now."""
        self.client.report_pipeline_status(self.name, self.status.state, **self._status_args())

    # --- inside ---------------------------------------------------------------------------------------------

    def _register(self) -> None:
        backoff = self._backoff()
        while not self._stop.is_set():
            try:
                response = self.client.register_pipeline(self.name, self.models, self.version, self.labels)
                self._interval(response)
                return
            except errors.ModelctlError as exc:
                if not _retriable(exc):
                    raise
                backoff.failed()
                log.warning("registering pipeline %s failed (%s); retrying", self.name, exc)
                self._stop.wait(backoff.delay())

    def _report_loop(self) -> None:
        while not self._stop.wait(self.report_interval or 10.0):
            try:
                self.report()
            except errors.ModelctlError as exc:
                log.warning("status report of %s failed: %s", self.name, exc)

    def _command_loop(self) -> None:
        backoff = self._backoff()
        while not self._stop.is_set():
            try:
                self._stream = self.client.watch_pipeline_commands(self.name)
                for command in self._stream:
                    backoff.succeeded()
                    self._dispatch(command)
                    if self._stop.is_set():
                        return
            except errors.ModelctlError as exc:
                if self._stop.is_set():
                    return
                if exc.code.name == "NOT_FOUND":
                    self._register()  # the controller forgot us (a new database): register again
                elif not _retriable(exc):
                    raise
                log.info("command stream of %s broke (%s); reconnecting", self.name, exc)
            backoff.failed()
            self._stop.wait(backoff.delay())

    def _dispatch(self, command: _pb.PipelineCommand) -> None:
        if not self._is_new(command):
            return
        if not self._call_until_done(lambda: self.client.update_pipeline_command(command.id, "acknowledged"),
                                     command.id, acknowledging=True):
            return
        fn = self._handlers.get(command.kind)
        ctx = CommandContext(command, self._progress)
        try:
            if fn is None:
                raise LookupError(f"pipeline {self.name} has no handler for {kind_name(command.kind)}")
            outcome = _outcome(fn(ctx))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the handler's failure is the command's result
            log.exception("command %s (%s) failed", command.id, kind_name(command.kind))
            error = f"{type(exc).__name__}: {exc}"
            self._call_until_done(lambda: self.client.update_pipeline_command(command.id, "failed", error=error),
                                  command.id)
            return
        self._call_until_done(lambda: self.client.update_pipeline_command(
            command.id, "succeeded", result=outcome.result, version=outcome.version), command.id)

    def _call_until_done(self, call: Callable[[], Any], command_id: str, *, acknowledging: bool = False) -> bool:
        """Retry `call` through outages; False when the controller refuses it (cancelled, expired, taken)."""
        backoff = self._backoff()
        while True:
            try:
                call()
                return True
            except errors.ModelctlError as exc:
                if not _retriable(exc):
                    log.info("command %s: %s", command_id, exc)
                    return False
                if self._stop.is_set():
                    if acknowledging:
                        self._forget(command_id)  # not taken on: the next agent receives it again
                    return False
                backoff.failed()
                self._stop.wait(backoff.delay())

    def _progress(self, percent: float, job: str | None, state: PipelineStateLike | None) -> None:
        self.set_status(state, job, percent)
        try:
            self.report()
        except errors.ModelctlError as exc:
            log.warning("progress report of %s failed: %s", self.name, exc)


class AsyncPipelineAgent(_AgentBase):
    """The agent for asyncio programs: `await agent.run()`, or `agent.start()` / `await agent.stop()`."""

    def __init__(self, name: str, *, client: AsyncClient | None = None, address: str | None = None,
                 token: str | None = None, **options: Any) -> None:
        super().__init__(name, **options)
        self._own_client = client is None
        self.client = client or AsyncClient(address, token=token)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await self._register()
        reporter = asyncio.get_running_loop().create_task(self._report_loop())
        try:
            await self._command_loop()
        finally:
            reporter.cancel()

    def start(self) -> AsyncPipelineAgent:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"{self.name}-agent")
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: its end is not news
                pass
        if self._own_client:
            await self.client.close()

    async def report(self) -> None:
        await self.client.report_pipeline_status(self.name, self.status.state, **self._status_args())

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _register(self) -> None:
        backoff = self._backoff()
        while True:
            try:
                self._interval(await self.client.register_pipeline(self.name, self.models, self.version,
                                                                   self.labels))
                return
            except errors.ModelctlError as exc:
                if not _retriable(exc):
                    raise
                backoff.failed()
                await self._sleep(backoff.delay())

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval or 10.0)
            try:
                await self.report()
            except errors.ModelctlError as exc:
                log.warning("status report of %s failed: %s", self.name, exc)

    async def _command_loop(self) -> None:
        backoff = self._backoff()
        while not self._stopping.is_set():
            try:
                async with self.client.watch_pipeline_commands(self.name) as stream:
                    async for command in stream:
                        backoff.succeeded()
                        await self._dispatch(command)
            except errors.ModelctlError as exc:
                if exc.code.name == "NOT_FOUND":
                    await self._register()
                elif not _retriable(exc):
                    raise
            backoff.failed()
            await self._sleep(backoff.delay())

    async def _dispatch(self, command: _pb.PipelineCommand) -> None:
        if not self._is_new(command):
            return
        if not await self._call_until_done(
                lambda: self.client.update_pipeline_command(command.id, "acknowledged"), command.id):
            return
        fn = self._handlers.get(command.kind)
        try:
            if fn is None:
                raise LookupError(f"pipeline {self.name} has no handler for {kind_name(command.kind)}")
            value = fn(CommandContext(command, self._progress))
            outcome = _outcome(await value if asyncio.iscoroutine(value) else value)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the handler's failure is the command's result
            log.exception("command %s (%s) failed", command.id, kind_name(command.kind))
            error = f"{type(exc).__name__}: {exc}"
            await self._call_until_done(
                lambda: self.client.update_pipeline_command(command.id, "failed", error=error), command.id)
            return
        await self._call_until_done(lambda: self.client.update_pipeline_command(
            command.id, "succeeded", result=outcome.result, version=outcome.version), command.id)

    async def _call_until_done(self, call: Callable[[], Awaitable[Any]], command_id: str) -> bool:
        backoff = self._backoff()
        while True:
            try:
                await call()
                return True
            except errors.ModelctlError as exc:
                if not _retriable(exc):
                    log.info("command %s: %s", command_id, exc)
                    return False
                backoff.failed()
                await self._sleep(backoff.delay())

    def _progress(self, percent: float, job: str | None, state: PipelineStateLike | None) -> Awaitable[None]:
        """Returns a coroutine: `await ctx.progress(50)` reports now."""
        self.set_status(state, job, percent)

        async def send() -> None:
            try:
                await self.report()
            except errors.ModelctlError as exc:
                log.warning("progress report of %s failed: %s", self.name, exc)
        return send()

"""Click parameter types for `KEY=VALUE`, `KEY=NUMBER` and durations, and model-name completion."""

from __future__ import annotations

from typing import Any, Callable

import click
from click.shell_completion import CompletionItem

from ..client import Client
from ._context import CliContext
from ._parsing import parse_duration, parse_key_value, parse_metric

#: Completion runs while the user waits at a prompt: answer fast or not at all.
COMPLETION_TIMEOUT = 2.0
COMPLETION_LIMIT = 100


class _Parsed(click.ParamType):
    """A type whose parsing function raises ValueError on bad input (a usage error, exit 2)."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # already converted (a default given as a number, say)
        try:
            return self._parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


KEY_VALUE = _Parsed("KEY=VALUE", parse_key_value)
METRIC = _Parsed("KEY=NUMBER", parse_metric)
DURATION = _Parsed("DURATION", parse_duration)
#: For waits where none at all makes sense (a bake time of 0s: not watched after the switch).
DURATION_OR_ZERO = _Parsed("DURATION", lambda text: parse_duration(text, allow_zero=True))


def complete_model_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Model names from the server that start with what is typed; nothing at all on any failure.

    During completion Click parses the command line without running the group
    callback, so the connection options come from the root's parsed parameters.
    """
    try:
        root = ctx.find_root()
        cli = root.obj if isinstance(root.obj, CliContext) else CliContext.from_params(root.params)
        # A prompt must not hang on retries against a server that is down.
        options = cli.options.replace(timeout=COMPLETION_TIMEOUT, retry=None)
        with Client(options=options) as client:
            page = client.list_models(name_prefix=incomplete, page_size=COMPLETION_LIMIT)
        return [CompletionItem(model.name) for model in page.models]
    except Exception:  # noqa: BLE001 - a completion that fails must stay silent, never print a traceback
        return []


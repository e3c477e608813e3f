"""Printing results: one JSON document for scripts, aligned tables for people, bare ids for pipes.

JSON is protobuf's own mapping with the .proto field names (`live_version`,
not `liveVersion`), enums by name (`MODEL_VERSION_STATE_READY`), and every
field present even when empty, so scripts can rely on the keys being there.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Callable, Iterable, Sequence, Union

import click
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message

from ._context import OUTPUT_FORMATS, CliContext
from ._parsing import format_duration

Document = Union[Message, Sequence[Message]]
Row = Sequence[object]
MISSING = "-"


def attach_output_options(command: click.Command) -> None:
    """Let every command under `command` also take `-o` and `-q` after its name.

    The root group owns these options (`modelctl -o json models show x`), but
    people type them at the end (`modelctl models show x -o json`); adding
    them here, once, spares each command module from declaring them.
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            attach_output_options(sub)
        return
    if any(param.name == "output" for param in command.params):
        return  # already attached (a command listed twice) or declared by the command itself
    command.params.extend([
        click.Option(["-o", "--output"], type=click.Choice(OUTPUT_FORMATS), default=None, expose_value=False,
                     callback=_set_output, help="table or json; same as the global option."),
        click.Option(["-q", "--quiet"], is_flag=True, default=False, expose_value=False, callback=_set_quiet,
                     help="Print only ids or names, one per line; same as the global option."),
    ])


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    cli = ctx.find_object(CliContext)
    if value is not None and cli is not None:  # no CliContext while completing
        cli.output = value


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    cli = ctx.find_object(CliContext)
    if value and cli is not None:
        cli.quiet = True


def to_json(document: Document) -> object:
    if isinstance(document, Message):
        return json_format.MessageToDict(document, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return [to_json(message) for message in document]


def emit(cli: CliContext, document: Document, *, table: Callable[[], str], ids: Callable[[], Iterable[str]]) -> None:
    """Print `document` the way the invocation asked: `-q` ids, `-o json`, or the table.

    `-q` wins over `-o json`: it is the mode for shell pipelines.
    """
    if cli.quiet:
        for identifier in ids():
            click.echo(identifier)
    elif cli.json:
        click.echo(json.dumps(to_json(document), indent=2))
    else:
        text = table()
        if text:
            click.echo(text)


def render_table(headers: Sequence[str], rows: Iterable[Row], *, empty: str = "") -> str:
    """Columns padded to their widest cell, two spaces apart; `empty` when there are no rows."""
    cells = [[_cell(value) for value in row] for row in rows]
    if not cells:
        return empty
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def render_fields(pairs: Iterable[tuple[str, object]]) -> str:
    """A `label:  value` block for one object."""
    items = [(f"{label}:", _cell(value)) for label, value in pairs]
    width = max(len(label) for label, _ in items)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in items)


def _cell(value: object) -> str:
    text = str(value) if value not in (None, "") else MISSING
    return " ".join(text.split())  # a newline in a value must not break the table


# --- values as people read them ---------------------------------------------------------------------------

def timestamp(value: timestamp_pb2.Timestamp) -> str:
    """UTC, to the second: `2024-05-01 12:00:03Z`; '-' when unset."""
    if value.seconds == 0 and value.nanos == 0:
        return MISSING
    return value.ToDatetime(tzinfo=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(value: duration_pb2.Duration) -> str:
    return format_duration(value.ToTimedelta().total_seconds())


def size(num_bytes: int) -> str:
    """`1.5 MiB`; plain bytes below 1 KiB."""
    if num_bytes < 1024:
        return f"{num_bytes} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    amount, index = num_bytes / 1024, 0
    while amount >= 1024 and index < len(units) - 1:
        amount, index = amount / 1024, index + 1
    return f"{amount:.1f} {units[index]}"


def enum_label(name: str, prefix: str) -> str:
    """`MODEL_VERSION_STATE_READY` -> `READY`: the prefix is protobuf style, not information."""
    return name.removeprefix(prefix) if name else MISSING


def percent(value: float) -> str:
    return f"{value:.1f} %"


def mapping(values: dict[str, object]) -> str:
    """`a=1,b=2` in key order, or '-'."""
    return ",".join(f"{key}={_number(value)}" for key, value in sorted(values.items())) or MISSING


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)

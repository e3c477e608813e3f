"""`modelctl traffic show`."""

from __future__ import annotations

import click

from ..types import TrafficSplit
from . import _output as out
from ._context import CliContext, pass_cli
from ._params import complete_model_names


@click.group()
def traffic() -> None:
    """See how a model's traffic is split across its versions."""


@traffic.command()
@click.argument("name", shell_complete=complete_model_names)
@pass_cli
def show(cli: CliContext, name: str) -> None:
    """Show the traffic split of model NAME: version -> percent.

    With -q, prints the versions that receive traffic, largest share first.
    """
    split = cli.client.get_traffic_split(name)
    serving = [version for version, weight in _shares(split) if weight > 0]
    out.emit(cli, split, table=lambda: _split_text(split), ids=lambda: serving)


def _shares(split: TrafficSplit) -> list[tuple[str, float]]:
    return sorted(split.weights.items(), key=lambda item: (-item[1], item[0]))


def _split_text(split: TrafficSplit) -> str:
    rows = [(version, f"{weight:g}%") for version, weight in _shares(split)]
    table = out.render_table(("VERSION", "WEIGHT"), rows,
                             empty="No traffic: the model has not been deployed.")
    return f"Model: {split.model}\n\n{table}"

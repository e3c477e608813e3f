"""`modelctl models register | list | show | archive`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Callable, Iterator

import click

from .._artifacts import ProgressCallback, is_uri
from ..types import Model, ModelVersion, ModelVersionState, RegisterModelResponse
from . import _output as out
from ._context import CliContext, pass_cli
from ._params import KEY_VALUE, METRIC, complete_model_names

#: Files smaller than this upload too fast for a progress bar to be worth drawing.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_STATE_PREFIX = "MODEL_VERSION_STATE_"


@click.group()
def models() -> None:
    """Register, list, inspect and archive model versions."""


@models.command()
@click.argument("name", shell_complete=complete_model_names)
@click.option("--version", "version", required=True, help="Version string, unique per model (e.g. 1.2.0).")
@click.option("--artifact", required=True, metavar="PATH_OR_URI",
              help="A local file to upload, or an s3://, gs://, file:// or https:// URI to record as is.")
@click.option("--framework", default="", help="e.g. sklearn, pytorch, onnx.")
@click.option("--metric", "metrics", multiple=True, type=METRIC, help="Offline metric, KEY=NUMBER; repeatable.")
@click.option("--tag", "tags", multiple=True, type=KEY_VALUE, help="Tag, KEY=VALUE; repeatable.")
@click.option("--description", default="", help="Free text for people.")
@pass_cli
def register(cli: CliContext, name: str, version: str, artifact: str, framework: str,
             metrics: tuple[tuple[str, float], ...], tags: tuple[tuple[str, str], ...], description: str) -> None:
    """Register version VERSION of model NAME.

    A local --artifact is uploaded first (streamed and sha256-checked); a URI is recorded as is.
    """
    local = None if is_uri(artifact) else _local_file(artifact)
    with _upload_progress(cli, local) as progress:
        response = cli.client.register_model(name, version, str(local or artifact), framework=framework,
                                             metrics=dict(metrics), tags=dict(tags), description=description,
                                             progress=progress)
    out.emit(cli, response.model_version, table=lambda: _registered(response),
             ids=lambda: [response.model_version.version])


def _local_file(artifact: str) -> Path:
    path = Path(artifact).expanduser()
    if not path.is_file():
        raise click.BadParameter(f"{artifact!r} is neither a file nor a URI (s3://, gs://, file://, https://)",
                                 param_hint="'--artifact'")
    return path


@contextlib.contextmanager
def _upload_progress(cli: CliContext, path: Path | None) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr for an upload long enough to watch, when stderr is a terminal."""
    total = path.stat().st_size if path is not None else 0
    if path is None or cli.quiet or total < PROGRESS_MIN_BYTES or not _stderr_is_terminal():
        yield None
        return
    with click.progressbar(length=total, label=f"Uploading {path.name}", file=sys.stderr,
                           show_pos=False, show_percent=True, show_eta=True) as bar:
        yield _advance(bar.update)


def _stderr_is_terminal() -> bool:
    # A bar redrawn with carriage returns is noise in a CI log or a file.
    return sys.stderr.isatty()


def _advance(update: Callable[[int], None]) -> ProgressCallback:
    """Turns the SDK's running total into the increments a Click progress bar wants."""
    done = 0

    def progress(sent: int, _total: int) -> None:
        nonlocal done
        update(sent - done)
        done = sent
    return progress


def _registered(response: RegisterModelResponse) -> str:
    text = _version_fields(response.model_version)
    if response.archived:
        retired = ", ".join(v.version for v in response.archived)
        text += f"\nArchived by retention: {retired}"
    return text


@models.command("list")
@click.option("--prefix", default="", help="Only models whose name starts with this.")
@click.option("--tag", "tags", multiple=True, type=KEY_VALUE,
              help="Only models with a version carrying this tag, KEY=VALUE; repeatable (all must match).")
@click.option("--all", "include_archived", is_flag=True, help="Include archived versions.")
@pass_cli
def list_models(cli: CliContext, prefix: str, tags: tuple[tuple[str, str], ...], include_archived: bool) -> None:
    """List models by name, with their latest and live versions."""
    found = list(cli.client.iter_models(name_prefix=prefix, tags=dict(tags), include_archived=include_archived))
    out.emit(cli, found, table=lambda: _models_table(found), ids=lambda: [m.name for m in found])


def _models_table(found: list[Model]) -> str:
    rows = [(m.name, len(m.versions), m.versions[0].version if m.versions else "", m.live_version,
             out.mapping(dict(m.traffic)), out.timestamp(m.created_at)) for m in found]
    return out.render_table(("NAME", "VERSIONS", "LATEST", "LIVE", "TRAFFIC", "CREATED"), rows,
                            empty="No models.")


@models.command()
@click.argument("name", shell_complete=complete_model_names)
@click.option("--all", "include_archived", is_flag=True, help="Include archived versions.")
@pass_cli
def show(cli: CliContext, name: str, include_archived: bool) -> None:
    """Show model NAME: its versions, the live one and the traffic split."""
    model = cli.client.get_model(name, include_archived=include_archived)
    out.emit(cli, model, table=lambda: _model_details(model), ids=lambda: [v.version for v in model.versions])


def _model_details(model: Model) -> str:
    header = out.render_fields([
        ("Model", model.name),
        ("Live", model.live_version),
        ("Previous", model.previous_version),
        ("Traffic", out.mapping(dict(model.traffic))),
        ("Created", out.timestamp(model.created_at)),
    ])
    rows = [(v.version, _state(v), v.framework, out.size(v.size_bytes) if v.size_bytes else "", v.sha256[:12],
             out.timestamp(v.created_at), v.created_by) for v in model.versions]
    versions = out.render_table(("VERSION", "STATE", "FRAMEWORK", "SIZE", "SHA256", "CREATED", "BY"), rows,
                                empty="No versions.")
    return f"{header}\n\n{versions}"


@models.command()
@click.argument("name", shell_complete=complete_model_names)
@click.argument("version")
@pass_cli
def archive(cli: CliContext, name: str, version: str) -> None:
    """Archive VERSION of model NAME: kept for history, no longer deployable."""
    archived = cli.client.archive_version(name, version)
    out.emit(cli, archived, table=lambda: _version_fields(archived), ids=lambda: [archived.version])


def _version_fields(version: ModelVersion) -> str:
    return out.render_fields([
        ("Model", version.name),
        ("Version", version.version),
        ("State", _state(version)),
        ("Artifact", version.artifact_uri),
        ("SHA256", version.sha256),
        ("Size", out.size(version.size_bytes) if version.size_bytes else ""),
        ("Framework", version.framework),
        ("Metrics", out.mapping(dict(version.metrics))),
        ("Tags", out.mapping(dict(version.tags))),
        ("Description", version.description),
        ("Created", f"{out.timestamp(version.created_at)} by {version.created_by or '-'}"),
    ])


def _state(version: ModelVersion) -> str:
    return out.enum_label(ModelVersionState.Name(version.state), _STATE_PREFIX)

"""The `modelctl` command line: Click commands over `modelctl.Client`.

`main.py` builds the root group and lists the top-level commands; each area
of the product has its own module (`models.py`, `deploy.py` with `rollback`,
`deployments.py`, `traffic.py`, `metrics.py`, `system.py`, `audit.py`,
`tokens.py`). The `_` modules are the shared plumbing: `_context` (the
per-invocation `CliContext` with its lazy client, and `pass_cli`), `_output`
(`emit`: table, `-o json` or `-q`), `_errors` (the one place errors become a
one-line message and an exit code), `_params` and `_parsing` (`KEY=VALUE`,
durations, model-name completion), `_watch` (following a deployment: progress
line, plain lines or JSON Lines, and the exit codes).

Adding a command group, e.g. experiments:

1. write `experiments.py` with a `@click.group()` (or a plain `@click.command()`);
   its commands take `@pass_cli`, call `cli.client.<method>`, and print with
   `_output.emit(cli, message, table=..., ids=...)`;
2. add it to `COMMANDS` in `main.py`.

Nothing else: `-o/-q` are attached to every command, and SDK errors raised
inside it become `modelctl: <message>` with exit code 1.
"""

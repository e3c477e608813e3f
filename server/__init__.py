"""modelctl_server: the modelctl controller (gRPC servicers, domain engines, persistence).

The embedding API: run the controller inside an existing asyncio program, next
to its own tasks, with settings built in code.

    import asyncio
    from modelctl_server import ControllerApp, Settings

    async def main() -> None:
        settings = Settings.build(server={"grpc_address": "127.0.0.1:0", "metrics_address": "127.0.0.1:0",
                                          "data_dir": "/var/lib/modelctl"},
                                  pipelines={"stale_after": "2m"})
        async with ControllerApp(settings) as app:        # migrates, binds, serves; stops on exit
            print("gRPC on", app.grpc_address, "metrics on", app.metrics_address)
            await my_orchestrator(app.grpc_address)       # your own tasks, on the same loop

    asyncio.run(main())

- `Settings.build(**sections)` takes each config section as a mapping, written as in the TOML file
  ("30s" or 30.0 for durations), and checks it exactly as the file and the environment are checked:
  a bad value raises `ConfigError` naming `section.key`. It does not read the environment;
  `load_settings(file, environ, overrides=...)` layers defaults, file, environment and code, in that order.
- `ControllerApp(settings)`: `await app.start()` (returns the bound gRPC port), `await app.stop()`
  (graceful, idempotent), or `async with`. `app.grpc_address` and `app.metrics_address` are the bound
  HOST:PORT (port 0 in the settings asks for a free port). The controller never blocks the loop: its
  database work runs on its own thread pool. It does not install signal handlers; the program does.
- The first admin token is written to `settings.admin_token_path` (or taken from `MODELCTL_ADMIN_TOKEN`
  in the `environ` given to `ControllerApp`).

`modelctl-server` (`modelctl_server.main`) is this API plus signal handling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["ConfigError", "ControllerApp", "Settings", "__version__", "load_settings"]

if TYPE_CHECKING:
    from .app import ControllerApp
    from .config import ConfigError, Settings, load_settings

_EXPORTS = {"ControllerApp": "app", "Settings": "config", "ConfigError": "config", "load_settings": "config"}


def __getattr__(name: str) -> Any:
    # Imported on first use: `import modelctl_server.config` (the migrations, the CLI's tests) stays light.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelctl_server' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

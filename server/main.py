"""`modelctl-server [--config FILE]`: run the controller until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from . import ConfigError, ControllerApp, __version__, load_settings
from .system.garbage import settle_after_start

log = logging.getLogger("modelctl_server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelctl-server", description="Run the modelctl controller.")
    parser.add_argument("--config", metavar="FILE", help="TOML config file (env MODELCTL_<SECTION>_<KEY> overrides)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="version", version=f"modelctl-server {__version__}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"modelctl-server: config error: {exc}", file=sys.stderr)
        return 2
    try:
        app = ControllerApp(settings)  # checks what needs more than the file: Apprise URLs
    except ConfigError as exc:
        print(f"modelctl-server: config error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(app))
    except OSError as exc:
        print(f"modelctl-server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _serve(app: ControllerApp) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except Exception as exc:
        log.error("could not start: %s", exc)
        await app.stop(grace=0)
        return 1
    settle_after_start()  # start-up's objects out of the collector's way (see system.garbage)
    # A line scripts and tests can wait for.
    metrics_port = app.metrics_address.rpartition(":")[2]
    print(f"modelctl-server listening on {app.grpc_address} (metrics on port {metrics_port})", flush=True)
    await stop.wait()
    log.info("shutting down: health NOT_SERVING, draining in-flight calls (grace %ss)",
             app.settings.server.shutdown_grace)
    await app.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

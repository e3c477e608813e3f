"""A pipeline service for the tests: a real process running `modelctl.PipelineAgent`.

    python pipeline_worker.py NAME LOG_FILE

MODELCTL_ADDR and MODELCTL_TOKEN say where the controller is. Every command a
handler runs is appended to LOG_FILE ("<kind> <id>"), so a test can count how
often each ran. OPTIMIZE registers the version named by its `version`
parameter and returns it; RETRAIN waits for ever (a test kills the process
while it runs); the others just succeed.
"""

from __future__ import annotations

import sys
import threading

import modelctl


def main(name: str, log_path: str) -> None:
    agent = modelctl.PipelineAgent(name, models=["fraud"], version="worker-1", report_interval=0.2)

    def log(ctx: modelctl.CommandContext) -> None:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"{ctx.kind} {ctx.id}\n")

    @agent.handler("optimize")
    def optimize(ctx: modelctl.CommandContext) -> modelctl.CommandResult:
        log(ctx)
        ctx.progress(50, f"optimising {ctx.model}", "optimizing")
        version = ctx.parameters["version"]
        agent.client.register_model(ctx.model, version, f"s3://models/{ctx.model}/{version}.onnx")
        agent.set_status("idle", "", 100)
        return modelctl.CommandResult(f"optimised {ctx.model}: auc 0.93", version=version)

    @agent.handler("retrain")
    def retrain(ctx: modelctl.CommandContext) -> None:
        log(ctx)
        threading.Event().wait()  # until the test kills this process

    for kind in ("pause", "resume", "reload-config"):
        agent.on(kind, log)
    print("agent running", flush=True)
    agent.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

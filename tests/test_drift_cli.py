"""`modelctl drift show` against a real controller: the table for people, JSON for scripts, -q, errors."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner, Result

import modelctl
from modelctl.cli.main import cli

REPORT_FIELDS = {"model", "version", "data_score", "prior_score", "concept_score", "drifted", "features",
                 "reference_samples", "window_samples", "window_start", "window_end", "threshold", "reference_source",
                 "predictions", "notes"}


def invoke(server, *args: str) -> Result:  # type: ignore[no-untyped-def]
    env = {"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def _drifting(server) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    with modelctl.Client(server.address, token=server.admin_token) as client:
        client.register_model("fraud", "1", "s3://m/1")
        client.report_metrics(model="fraud", version="1", reference=True,
                              features={"age": rng.normal(40, 10, 2000).tolist(), "country": ["fr", "de"] * 1000})
        client.report_metrics(model="fraud", version="1", requests=2000,
                              features={"age": rng.normal(52, 10, 2000).tolist(), "country": ["fr", "de"] * 1000})


def test_show_as_a_table(live_server) -> None:  # type: ignore[no-untyped-def]
    _drifting(live_server)
    result = invoke(live_server, "drift", "show", "fraud", "--version", "1", "--window", "30m")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Drifted:" in text and "YES" in text
    assert "reference samples, 2000 values" in text
    assert "(30m)" in text
    header = next(line for line in text.splitlines() if line.startswith("FEATURE"))
    assert header.split() == ["FEATURE", "TYPE", "PSI", "KS", "KS", "P", "CHI2", "CHI2", "P", "REF", "WINDOW",
                              "DRIFTED", "NOTE"]
    age = next(line for line in text.splitlines() if line.startswith("age "))
    assert "numeric" in age and "YES" in age
    country = next(line for line in text.splitlines() if line.startswith("country "))
    assert "categorical" in country and " no" in country
    assert "no predictions reported" in text and "Notes:" in text


def test_show_as_json_and_quiet(live_server) -> None:  # type: ignore[no-untyped-def]
    _drifting(live_server)
    result = invoke(live_server, "drift", "show", "fraud", "--version", "1", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert REPORT_FIELDS <= set(document)
    assert document["drifted"] is True and document["reference_source"] == "REFERENCE_SOURCE_REFERENCE_SAMPLES"
    age = document["features"][0]
    assert {"name", "psi", "drifted", "ks_statistic", "ks_p_value", "type"} <= set(age)
    assert (age["name"], age["type"], age["drifted"]) == ("age", "FEATURE_TYPE_NUMERIC", True)
    quiet = invoke(live_server, "drift", "show", "fraud", "--version", "1", "-q")
    assert quiet.stdout.split() == ["age"]


def test_errors_are_one_line(live_server) -> None:  # type: ignore[no-untyped-def]
    _drifting(live_server)
    missing = invoke(live_server, "drift", "show", "fraud")  # no live version
    assert missing.exit_code == 1
    assert "no live version" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = invoke(live_server, "drift", "show", "nope", "--version", "1")
    assert unknown.exit_code == 1 and "no version '1'" in unknown.stderr
    bad = invoke(live_server, "drift", "show", "fraud", "--window", "soon")
    assert bad.exit_code == 2

"""The registry on both backends: SQLite files and a scratch PostgreSQL database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelctl_server.clock import FakeClock
from modelctl_server.errors import AlreadyExistsError
from modelctl_server.registry.artifacts import ArtifactStore
from modelctl_server.registry.service import NewVersion, RegistryService
from modelctl_server.store.db import Database


def make_registry(url: str, tmp_path: Path, clock: FakeClock | None = None) -> RegistryService:
    db = Database(url)
    db.migrate()
    return RegistryService(db, clock or FakeClock(), ArtifactStore(tmp_path / "models"), max_versions=3)


def test_register_list_archive_survive_a_new_connection(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    reg = make_registry(database_url, tmp_path, clock)
    for i in range(4):
        clock.advance(1)
        reg.register(NewVersion(name="fraud", version=f"1.{i}", artifact_uri="s3://b/k", metrics={"auc": 0.9 + i / 100},
                                tags={"team": "risk", "n": str(i)}), created_by="alice")
    reg.register(NewVersion(name="churn", version="1", artifact_uri="gs://b/k", tags={"team": "growth"}))
    reg.archive("churn", "1")

    again = make_registry(database_url, tmp_path)  # a fresh engine: nothing comes from memory
    model = again.get("fraud", include_archived=True)
    assert [v.version for v in model.versions] == ["1.3", "1.2", "1.1", "1.0"]
    assert [v.state for v in model.versions] == ["READY", "READY", "READY", "ARCHIVED"]  # retention kept 3
    assert model.versions[0].metrics == {"auc": pytest.approx(0.93)} and model.versions[0].created_by == "alice"
    assert model.versions[0].created_at.tzinfo is not None
    page = again.list(tags={"team": "risk"})
    assert [m.name for m in page.models] == ["fraud"]
    assert [m.name for m in again.list(tags={"n": "0"}).models] == []  # only archived versions carry it
    assert [m.name for m in again.list(tags={"n": "0"}, include_archived=True).models] == ["fraud"]
    assert again.counts() == (2, 3)
    assert again.model_names("fr") == ["fraud"]


def test_concurrent_registrations_of_one_version_admit_exactly_one(database_url: str, tmp_path: Path) -> None:
    reg = make_registry(database_url, tmp_path)

    def attempt(i: int) -> str:
        try:
            reg.register(NewVersion(name="race", version="1", artifact_uri=f"s3://b/{i}"))
            return "ok"
        except AlreadyExistsError:
            return "exists"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count("ok") == 1 and results.count("exists") == 15
    assert len(reg.get("race").versions) == 1

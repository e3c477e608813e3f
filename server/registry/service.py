"""The model registry: immutable versions, their metadata, and retention."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Collection

from sqlalchemy import and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..clock import Clock
from ..errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    FieldViolation,
    NotFoundError,
    ValidationError,
    Violations,
)
from ..pagination import decode_page_token, encode_page_token, page_size_or_default
from ..store.db import Database
from ..store.tables import ModelRow, VersionRow, VersionTagRow
from . import validation
from .artifacts import ArtifactStore

READY = "READY"
ARCHIVED = "ARCHIVED"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    artifact_uri: str
    sha256: str
    size_bytes: int
    state: str
    framework: str
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str
    created_by: str
    created_at: dt.datetime
    archived_at: dt.datetime | None


@dataclass(frozen=True)
class Model:
    name: str
    created_at: dt.datetime
    versions: list[ModelVersion]
    live_version: str
    previous_version: str
    traffic: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NewVersion:
    """What a caller asks to register."""

    name: str
    version: str
    artifact_uri: str
    sha256: str = ""
    framework: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Registration:
    version: ModelVersion
    #: Versions retention archived to stay within registry.max_versions.
    archived: list[ModelVersion]


@dataclass(frozen=True)
class ModelPage:
    models: list[Model]
    next_page_token: str


#: Gives the versions of a model that must not be archived beyond live and previous
#: (for example the target of a deployment in progress). Called inside the transaction.
ProtectedVersions = Callable[[Session, ModelRow], set[str]]
#: Gives the traffic splits (version -> percent) of several models at once, by model id.
TrafficLookup = Callable[[Session, list[ModelRow]], dict[int, dict[str, float]]]


class RegistryService:
    def __init__(self, db: Database, clock: Clock, artifacts: ArtifactStore, *, max_versions: int = 10,
                 protected_versions: ProtectedVersions | None = None,
                 traffic_lookup: TrafficLookup | None = None) -> None:
        self._db = db
        self._clock = clock
        self.artifacts = artifacts
        self.max_versions = max_versions
        self._protected = protected_versions or (lambda _s, _m: set())
        self._traffic = traffic_lookup or (lambda _s, _rows: {})

    def register(self, new: NewVersion, *, created_by: str = "") -> Registration:
        problems = Violations()
        validation.check_name(new.name, problems)
        validation.check_version(new.version, problems)
        validation.check_artifact_uri(new.artifact_uri, problems)
        validation.check_sha256(new.sha256, problems)
        validation.check_metadata(new.framework, new.description, new.metrics, new.tags, problems)
        problems.raise_if_any()
        sha256, size = new.sha256, 0
        if self.artifacts.is_managed(new.artifact_uri):
            # An uploaded artifact: its digest is known, so a declared one must agree.
            stored = self.artifacts.lookup(new.artifact_uri)
            if stored is None:
                raise ValidationError(FieldViolation("artifact_uri", "no uploaded artifact at this URI; "
                                                     "upload it with UploadArtifact first"))
            if sha256 and sha256 != stored.sha256:
                raise ValidationError(FieldViolation(
                    "sha256", f"declared {sha256} but the uploaded artifact is {stored.sha256}"))
            sha256, size = stored.sha256, stored.size_bytes
        try:
            return self._insert(new, sha256, size, created_by)
        except IntegrityError:
            # Lost a race with a concurrent registration of the same model or version.
            with self._db.session() as s:
                if self._find_version(s, new.name, new.version) is not None:
                    raise AlreadyExistsError(f"{new.name} version {new.version} already exists; "
                                             "versions are immutable, register a new version") from None
            return self._insert(new, sha256, size, created_by)

    def _insert(self, new: NewVersion, sha256: str, size: int, created_by: str) -> Registration:
        now = self._clock.now()
        with self._db.session() as s:
            model = s.scalars(select(ModelRow).where(ModelRow.name == new.name)).first()
            if model is None:
                model = ModelRow(name=new.name, created_at=now)
                s.add(model)
                s.flush()
            elif self._find_version(s, new.name, new.version) is not None:
                raise AlreadyExistsError(f"{new.name} version {new.version} already exists; "
                                         "versions are immutable, register a new version")
            row = VersionRow(model_id=model.id, version=new.version, artifact_uri=new.artifact_uri, sha256=sha256,
                             size_bytes=size, state=READY, framework=new.framework, metrics=dict(new.metrics),
                             tags=dict(new.tags), description=new.description, created_by=created_by,
                             created_at=now, archived_at=None)
            row.tag_rows = [VersionTagRow(key=k, value=v) for k, v in new.tags.items()]
            s.add(row)
            s.flush()
            archived = self._apply_retention(s, model, now)
            return Registration(_version(row, model.name), [_version(r, model.name) for r in archived])

    def _apply_retention(self, s: Session, model: ModelRow, now: dt.datetime) -> list[VersionRow]:
        """Archive the oldest versions beyond max_versions, never live or rollback targets."""
        active = list(s.scalars(select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.state == READY)
                                .order_by(VersionRow.id)))
        excess = len(active) - self.max_versions
        if excess <= 0:
            return []
        keep = {model.live_version, model.previous_version} | self._protected(s, model)
        archived = []
        for row in active[:-1]:  # never the version being registered right now
            if len(archived) == excess:
                break
            if row.version in keep:
                continue
            row.state, row.archived_at = ARCHIVED, now
            archived.append(row)
        return archived

    def get(self, name: str, *, include_archived: bool = True) -> Model:
        problems = Violations()
        validation.check_name(name, problems)
        problems.raise_if_any()
        with self._db.read() as s:
            row = s.scalars(select(ModelRow).where(ModelRow.name == name)
                            .options(_versions(include_archived))).first()
            if row is None:
                raise NotFoundError(f"model {name!r} is not registered")
            return self._models(s, [row])[0]

    def get_version(self, name: str, version: str) -> ModelVersion:
        with self._db.read() as s:
            row = self._find_version(s, name, version)
            if row is None:
                raise NotFoundError(f"{name} has no version {version!r}")
            return _version(row, name)

    def list(self, *, page_size: int = 0, page_token: str = "", name_prefix: str = "",
             tags: dict[str, str] | None = None, include_archived: bool = False) -> ModelPage:
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token, kind="models")
        problems = Violations()
        if len(name_prefix) > 128:
            problems.add("name_prefix", "must be at most 128 characters")
        for key in tags or {}:
            if not validation.TAG_KEY_RE.fullmatch(key):
                problems.add(f"tags[{key[:40]}]", "is not a valid tag key")
        problems.raise_if_any()
        query = select(ModelRow).order_by(ModelRow.name).limit(size + 1).options(_versions(include_archived))
        if after is not None:
            query = query.where(ModelRow.name > after)
        if name_prefix:
            # Compare a prefix range instead of LIKE so '_' and '%' in names need no escaping.
            query = query.where(func.substr(ModelRow.name, 1, len(name_prefix)) == name_prefix)
        for key, value in (tags or {}).items():
            conditions = [VersionRow.model_id == ModelRow.id, VersionTagRow.version_id == VersionRow.id,
                          VersionTagRow.key == key, VersionTagRow.value == value]
            if not include_archived:
                conditions.append(VersionRow.state == READY)
            query = query.where(exists(select(VersionTagRow.version_id).select_from(VersionTagRow)
                                       .join(VersionRow, VersionRow.id == VersionTagRow.version_id)
                                       .where(and_(*conditions))))
        with self._db.read() as s:
            rows = list(s.scalars(query))
            more = len(rows) > size
            rows = rows[:size]
            models = self._models(s, rows)
        token = encode_page_token("models", rows[-1].name) if more and rows else ""
        return ModelPage(models, token)

    def archive(self, name: str, version: str) -> ModelVersion:
        problems = Violations()
        validation.check_name(name, problems)
        validation.check_version(version, problems)
        problems.raise_if_any()
        with self._db.session() as s:
            row = self._find_version(s, name, version)
            if row is None:
                raise NotFoundError(f"{name} has no version {version!r}")
            model = row.model
            if row.state == ARCHIVED:
                raise FailedPreconditionError(f"{name} version {version} is already archived")
            if version == model.live_version:
                raise FailedPreconditionError(f"{name} version {version} is live; deploy another version first")
            if version == model.previous_version:
                raise FailedPreconditionError(
                    f"{name} version {version} is the rollback target of the live version and cannot be archived")
            if version in self._protected(s, model):
                raise FailedPreconditionError(
                    f"{name} version {version} is part of a deployment or experiment in progress")
            row.state, row.archived_at = ARCHIVED, self._clock.now()
            return _version(row, name)

    def counts(self) -> tuple[int, int]:
        """(models, non-archived versions)."""
        with self._db.read() as s:
            models = s.scalar(select(func.count()).select_from(ModelRow)) or 0
            versions = s.scalar(select(func.count()).select_from(VersionRow).where(VersionRow.state == READY)) or 0
        return models, versions

    def live_versions(self, names: Collection[str] | None = None) -> dict[str, str | None]:
        """Model name -> its live version (None before a first deployment); every model, or just `names`."""
        query = select(ModelRow.name, ModelRow.live_version)
        if names is not None:
            query = query.where(ModelRow.name.in_(list(names)))
        with self._db.read() as s:
            return {name: live for name, live in s.execute(query)}

    def managed_artifact_uris(self) -> set[str]:
        """Every artifact URI of a version (archived ones too) that points into the artifact store."""
        prefix = self.artifacts.root.as_uri() + "/"
        with self._db.read() as s:
            uris = s.scalars(select(VersionRow.artifact_uri)
                             .where(func.substr(VersionRow.artifact_uri, 1, len(prefix)) == prefix).distinct())
            return set(uris)

    def model_names(self, prefix: str = "", limit: int = 50) -> list[str]:
        """Model names for shell completion."""
        query = select(ModelRow.name).order_by(ModelRow.name).limit(limit)
        if prefix:
            query = query.where(func.substr(ModelRow.name, 1, len(prefix)) == prefix)
        with self._db.read() as s:
            return list(s.scalars(query))

    @staticmethod
    def _find_version(s: Session, name: str, version: str) -> VersionRow | None:
        return s.scalars(select(VersionRow).join(ModelRow).where(ModelRow.name == name,
                                                                VersionRow.version == version)).first()

    def _models(self, s: Session, rows: list[ModelRow]) -> list[Model]:
        """Domain models for `rows` (versions already loaded), with every traffic split in one query."""
        traffic = self._traffic(s, rows) if rows else {}
        return [Model(name=row.name, created_at=row.created_at, versions=[_version(v, row.name) for v in row.versions],
                      live_version=row.live_version or "", previous_version=row.previous_version or "",
                      traffic=traffic.get(row.id, {})) for row in rows]


def _versions(include_archived: bool):  # type: ignore[no-untyped-def]
    """Load a model's versions with it; archived ones only when asked, filtered by the database."""
    if include_archived:
        return selectinload(ModelRow.versions)
    return selectinload(ModelRow.versions.and_(VersionRow.state == READY))


def _version(row: VersionRow, name: str) -> ModelVersion:
    return ModelVersion(name=name, version=row.version, artifact_uri=row.artifact_uri, sha256=row.sha256,
                        size_bytes=row.size_bytes, state=row.state, framework=row.framework,
                        metrics=dict(row.metrics or {}), tags=dict(row.tags or {}), description=row.description,
                        created_by=row.created_by, created_at=row.created_at, archived_at=row.archived_at)

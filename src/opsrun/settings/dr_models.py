"""The schema of group_data `dr` (opsrun dr-test): targets, backups, PostgreSQL (and its failover drills on
this machine's servers or on RDS), Redis and Mongo, and whether the environment is production."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from opsrun.settings.values import AbsGlob, AbsPath, Line, Seconds, SecretRef, Strict

# ------------------------------------------------------------------------------------------------- dr


class Targets(Strict):
    rto_minutes: Annotated[float, Field(gt=0)] = Field(15.0, description="minutes above 0")
    rpo_minutes: Annotated[float, Field(gt=0)] = Field(5.0, description="minutes above 0")


class BackupSpec(Strict):
    name: Line = Field("backup", description="a one-line name")
    max_age_hours: Annotated[float, Field(gt=0)] = Field(26, description="hours above 0")
    s3: (
        Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/[A-Za-z0-9!_.*'()/-]*)?$")] | None
    ) = Field(None, description="an S3 URL s3://BUCKET/PREFIX")
    rds: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$")] | None = Field(
        None, description="an RDS instance identifier"
    )
    files: AbsGlob | None = Field(None, description="an absolute glob such as /var/backups/pg/*.dump")

    @model_validator(mode="after")
    def _one_source(self) -> BackupSpec:
        if sum(x is not None for x in (self.s3, self.rds, self.files)) != 1:
            raise ValueError("a backup needs exactly one of s3, rds or files")
        return self


ALLOW = "True to run this failover drill in an environment marked production (dr.production), else False"


class PgFailover(Strict):
    """The failover drill of a primary and its streaming replica that run on this machine (pg_ctl)."""

    primary_data: AbsPath = Field(description="the primary's data directory, e.g. /var/lib/postgresql/15/main")
    replica_data: AbsPath = Field(description="the replica's data directory")
    rebuild: Literal["auto", "pg_rewind", "basebackup"] = Field(
        "auto", description='"pg_rewind", "basebackup" or "auto" (pg_rewind when the server allows it)'
    )
    markers: Annotated[int, Field(ge=1, le=10000)] = Field(200, description="a count of RPO markers, 1 to 10000")
    timeout_seconds: Seconds = Field(120.0, description="seconds above 0 each step may take")
    allow_in_production: bool = Field(False, description=ALLOW)


class RdsFailover(Strict):
    """The Multi-AZ failover drill of an RDS instance (RebootDBInstance with ForceFailover)."""

    instance: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$")] = Field(
        description="an RDS instance identifier"
    )
    markers: Annotated[int, Field(ge=1, le=10000)] = Field(50, description="a count of RPO markers, 1 to 10000")
    timeout_seconds: Seconds = Field(900.0, description="seconds above 0 the failover may take")
    allow_in_production: bool = Field(False, description=ALLOW)


class PostgresDR(Strict):
    secret_env: dict[Literal["primary", "replica", "scratch"], SecretRef] = Field(
        description='{"primary": "ENV_NAME", "replica": ..., "scratch": ...}'
    )
    tables: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$")]] = Field(
        default_factory=list, description="table names"
    )
    max_lag_seconds: Annotated[float, Field(gt=0)] = Field(30, description="seconds above 0")
    max_lag_bytes: Annotated[int, Field(ge=0)] = Field(16 * 1024 * 1024, description="bytes, from 0")
    dumps: AbsGlob | None = Field(None, description="an absolute glob such as /var/backups/pg/*.dump")
    failover: PgFailover | None = Field(None, description='{"primary_data": "/...", "replica_data": "/..."}')
    rds_failover: RdsFailover | None = Field(None, description='{"instance": "orders-db"}')

    @model_validator(mode="after")
    def _failover_needs_replica(self) -> PostgresDR:
        if self.failover is not None and "replica" not in self.secret_env:
            raise ValueError('a failover drill needs secret_env "replica": the server it promotes')
        return self

    @field_validator("secret_env")
    @classmethod
    def _has_primary(cls, value: dict[str, str]) -> dict[str, str]:
        if "primary" not in value:
            raise ValueError('secret_env needs "primary"')
        return value


class DRSettings(Strict):
    production: bool | None = Field(
        None, description="True for an environment that serves users (None: when the inventory is named production)"
    )
    targets: Targets = Field(default_factory=Targets, description='{"rto_minutes": 15, "rpo_minutes": 5}')
    systems: dict[Literal["backups", "postgres", "redis", "mongo"], Targets] = Field(
        default_factory=dict, description='{"redis": {"rto_minutes": 2}, ...}'
    )
    backups: list[BackupSpec] = Field(default_factory=list, description="a list of backups")
    postgres: PostgresDR | None = None
    redis: bool = Field(False, description="True or False")
    mongo: bool = Field(False, description="True or False")


class DRSetting(Strict):
    dr: DRSettings

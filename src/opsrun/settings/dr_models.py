"""The schema of group_data `dr` (opsrun dr-test): targets, backups, PostgreSQL, Redis and Mongo."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from opsrun.settings.values import AbsGlob, EnvName, Line, Strict

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


class PostgresDR(Strict):
    secret_env: dict[Literal["primary", "replica", "scratch"], EnvName] = Field(
        description='{"primary": "ENV_NAME", "replica": ..., "scratch": ...}'
    )
    tables: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$")]] = Field(
        default_factory=list, description="table names"
    )
    max_lag_seconds: Annotated[float, Field(gt=0)] = Field(30, description="seconds above 0")
    max_lag_bytes: Annotated[int, Field(ge=0)] = Field(16 * 1024 * 1024, description="bytes, from 0")
    dumps: AbsGlob | None = Field(None, description="an absolute glob such as /var/backups/pg/*.dump")

    @field_validator("secret_env")
    @classmethod
    def _has_primary(cls, value: dict[str, str]) -> dict[str, str]:
        if "primary" not in value:
            raise ValueError('secret_env needs "primary"')
        return value


class DRSettings(Strict):
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

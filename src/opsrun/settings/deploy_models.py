"""The schemas of the deploys' settings: nginx_*, pm2_*, patching_*, redis_cluster_*, mongo_replicaset_*."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from opsrun.settings.values import (
    FIX_NAME,
    FIX_PATH,
    FIX_PORT,
    FIX_REFERENCE,
    LINE_RE,
    SETTING_WORD_RE,
    AbsPath,
    EnvName,
    Line,
    Name,
    Port,
    SecretRef,
    Strict,
)

# -------------------------------------------------------------------------------------------- deploys


class NginxSettings(Strict):
    listen_port: Port = Field(80, description=FIX_PORT)
    server_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*~-]+( [A-Za-z0-9_.*~-]+)*$")] = Field(
        "_", description="server names separated by single spaces (letters, digits, _.*~-)"
    )
    upstream_servers: list[
        Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")]
    ] = Field(default_factory=list, description='HOST:PORT entries, e.g. ["127.0.0.1:3001"]')
    upstream_method: Literal["least_conn", "ip_hash", "random"] = Field(
        "least_conn", description="least_conn, ip_hash or random"
    )
    worker_processes: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = Field(
        "auto", description='"auto" or a number of processes'
    )
    worker_connections: Annotated[int, Field(ge=1, le=1_048_576)] = Field(1024, description="a number from 1")
    keepalive_timeout: Annotated[int, Field(ge=0, le=86400)] = Field(65, description="seconds, from 0")
    extra_directives: list[Line] = Field(
        default_factory=list, description="a list of single-line nginx directives (no newlines)"
    )


MEMORY = Annotated[str, StringConstraints(pattern=r"^[0-9]+[KMG]?$")]


class Pm2App(Strict):
    name: Name = Field(description="the app's name, " + FIX_NAME)
    source: Annotated[str, StringConstraints(pattern=r"^(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._-][A-Za-z0-9._/-]*$")] = Field(
        description="a folder of the ops repo, relative, without '..' (e.g. apps/demo)"
    )
    script: Annotated[str, StringConstraints(pattern=r"^(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._-][A-Za-z0-9._/-]*$")] = Field(
        description="the script inside the app folder, e.g. server.js"
    )
    cwd: AbsPath = Field(
        description="where the app lives on the host (its releases in CWD/releases, CWD/current the one PM2 "
        "runs), " + FIX_PATH
    )
    instances: Annotated[int, Field(ge=1, le=1024)] = Field(1, description="a number of processes from 1, e.g. 2")
    exec_mode: Literal["fork", "cluster"] = Field("fork", description="fork or cluster")
    max_memory_restart: MEMORY = Field("300M", description='a size such as "200M"')
    listen_timeout_ms: Annotated[int, Field(ge=0)] = Field(10000, description="milliseconds, from 0")
    kill_timeout_ms: Annotated[int, Field(ge=0)] = Field(5000, description="milliseconds, from 0")
    env: dict[EnvName, Annotated[str, StringConstraints(pattern=LINE_RE)] | int | float | bool] = Field(
        default_factory=dict, description="{VARIABLE: value}: variable names of letters, digits and _"
    )
    secret_env: dict[EnvName, SecretRef] = Field(
        default_factory=dict, description="{VARIABLE: where its value is kept}: " + FIX_REFERENCE
    )
    not_secret: list[EnvName] = Field(
        default_factory=list,
        description='the env variables whose secret-looking names hold plain configuration, e.g. ["AUTH_MODE"]',
    )

    @field_validator("not_secret")
    @classmethod
    def _plain_env_only(cls, names: list[str], info: ValidationInfo) -> list[str]:
        """An exemption names a variable of this app's env; never one of its secret_env (stale ones are errors)."""
        env, secret_env = info.data.get("env", {}), info.data.get("secret_env", {})
        for name in names:
            if name in secret_env:
                raise ValueError(f"{name} is in secret_env: a secret cannot be declared not secret")
            if name not in env:
                raise ValueError(f"{name} is not a variable of env (its variables: {', '.join(env) or 'none'})")
        return names


class Pm2Logrotate(Strict):
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")] = "3.0.0"
    max_size: MEMORY = Field("100M", description='a size such as "100M"')
    retain: Annotated[int, Field(ge=1)] = Field(30, description="a number of files from 1")
    compress: bool = True
    dateFormat: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:.-]+$")] | None = None  # noqa: N815 - pm2-logrotate's name
    workerInterval: Annotated[int, Field(ge=1)] | None = None  # noqa: N815
    rotateInterval: Annotated[str, StringConstraints(pattern=r"^[0-9*/, -]+$")] | None = None  # noqa: N815
    rotateModule: bool | None = None  # noqa: N815
    TZ: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_/+-]+$")] | None = None


class Pm2Settings(Strict):
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")] = Field(
        "6.0.9", description='an exact version such as "6.0.9"'
    )
    logrotate: Pm2Logrotate = Field(default_factory=Pm2Logrotate, description="pm2-logrotate settings")
    apps: list[Pm2App] = Field(default_factory=list, description="a list of apps")

    @field_validator("apps")
    @classmethod
    def _unique_names(cls, apps: list[Pm2App]) -> list[Pm2App]:
        names = [a.name for a in apps]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"app {twice[0]!r} is listed twice")
        return apps


class PatchingSettings(Strict):
    upgrade: Literal["all", "origins"] = Field("all", description='"all" or "origins"')
    origins: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 ._:*,=-]+$")]] = Field(
        default_factory=list, description='origin patterns such as "Debian-Security:*"'
    )
    hold: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.+-]*$")]] = Field(
        default_factory=list, description="Debian package names (lower-case letters, digits, .+-)"
    )
    restart_services: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9@._:-]+$")]] = Field(
        default_factory=list, description="systemd unit names"
    )
    apt_repositories: list[Annotated[str, StringConstraints(pattern=r"^deb(-src)? [^\x00-\x1f\x7f]+$")]] = Field(
        default_factory=list, description='one-line "deb URL SUITE COMPONENT" entries'
    )


class SecretEnvOnly(Strict):
    secret_env: dict[EnvName, SecretRef] = Field(
        default_factory=dict, description="{setting: where its value is kept}: " + FIX_REFERENCE
    )


class RedisSettings(Strict):
    ports: list[Port] = Field(default_factory=list, description="a list of ports (1-65535), e.g. [7000, 7001]")
    replicas: Annotated[int, Field(ge=0, le=16)] = Field(1, description="replicas per master, from 0")
    node_timeout_ms: Annotated[int, Field(ge=1)] = Field(5000, description="milliseconds, from 1")
    settings: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$")],
        Annotated[str, StringConstraints(pattern=SETTING_WORD_RE)] | Annotated[int, Field(strict=True)],
    ] = Field(
        default_factory=dict,
        description="{redis-setting: value}: lower-case names; values of letters, digits, spaces and ._:/,+*-",
    )
    auth: SecretEnvOnly | None = Field(None, description='{"secret_env": {"requirepass": "ENV_NAME"}}')

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[int]) -> list[int]:
        if len(set(ports)) != len(ports):
            raise ValueError("a port is listed twice")
        return ports


class MongoSettings(Strict):
    name: Name = Field("rs0", description="the replica set's name, " + FIX_NAME)
    install: Literal["repository", "present"] = Field("repository", description='"repository" or "present"')
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")] = Field(
        "7.0", description='a MongoDB series as a string, e.g. "7.0"'
    )
    port: Port = Field(27017, description=FIX_PORT)
    bind_ip: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:_-]+(,[A-Za-z0-9.:_-]+)*$")] = Field(
        "127.0.0.1", description="addresses separated by commas"
    )
    # int | float: a number stays as written (2, not 2.0) in mongod.conf and in the replica set's config
    cache_size_gb: Annotated[int, Field(gt=0)] | Annotated[float, Field(gt=0)] = Field(
        1, description="a size in GB above 0"
    )
    max_incoming_connections: Annotated[int, Field(ge=1)] = Field(65536, description="a number from 1")
    slow_op_threshold_ms: Annotated[int, Field(ge=0)] = Field(100, description="milliseconds, from 0")
    lag_threshold_seconds: Annotated[int, Field(gt=0)] | Annotated[float, Field(gt=0)] = Field(
        10, description="seconds above 0"
    )
    priority: Annotated[int, Field(ge=0, le=1000)] | Annotated[float, Field(ge=0, le=1000)] = Field(
        1, description="a number from 0 to 1000"
    )
    votes: Literal[0, 1] = Field(1, description="0 or 1")
    auth: SecretEnvOnly | None = Field(None, description='{"secret_env": {"keyfile": "ENV_NAME"}}')

"""The schemas of every setting opsrun or a deploy reads from group_data and inventories: one pydantic model
per family, strict (no "2" for 2, no True for a port), closed (`extra="forbid"`: a misspelt setting is an
error), with ranges and, for every value that reaches a shell, a config file or a protocol line, the
characters it may hold.

    SSHSettings        ssh_* (pyinfra's SSH connector data), also written to verify's ssh_config
    RollingPolicy      rolling / DEPLOY_rolling, with its HealthGate
    Balancer           balancer / DEPLOY_balancer: HAProxyBalancer | NginxBalancer | ELBv2Balancer
    NginxSettings      nginx_*            (deploys/nginx.py)
    Pm2Settings        pm2_* with Pm2App  (deploys/pm2.py)
    PatchingSettings   patching_*, apt_repositories (deploys/patching.py)
    RedisSettings      redis_cluster_*    (deploys/redis_cluster.py)
    MongoSettings      mongo_replicaset_* (deploys/mongo_replicaset.py)
    DRSettings         dr                 (opsrun dr-test)

A field's `description` is the fix an error message gives for it.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

# ------------------------------------------------------------------------------------- shared value types

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # app, backend, server, upstream, replica set, unit names
PATH_RE = r"^/[A-Za-z0-9._/@%+=:,~-]*$"  # absolute paths: no spaces, quotes, $, ;, newlines
GLOB_RE = r"^/[A-Za-z0-9._/@%+=:,~*?\[\]-]*$"
HOSTNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$|^[0-9A-Fa-f:.]+$"  # DNS name, IPv4 or IPv6 address
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
LINE_RE = r"^[^\x00-\x1f\x7f]*$"  # one line of text: no newline, carriage return or other control character
SETTING_WORD_RE = r"^[A-Za-z0-9 ._:/,+*-]*$"

Name = Annotated[str, StringConstraints(pattern=NAME_RE)]
AbsPath = Annotated[str, StringConstraints(pattern=PATH_RE)]
AbsGlob = Annotated[str, StringConstraints(pattern=GLOB_RE)]
Hostname = Annotated[str, StringConstraints(pattern=HOSTNAME_RE)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_RE)]
Line = Annotated[str, StringConstraints(pattern=LINE_RE)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]
Size = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?%$")] | Annotated[int, Field(ge=0)]

FIX_PORT = "a port number from 1 to 65535, written as a number (6379, not '6379')"
FIX_NAME = "a plain name: letters, digits, '.', '_' and '-' (no spaces, quotes or ';')"
FIX_PATH = "an absolute path of letters, digits and ./_-@%+=:,~ (no spaces, quotes, '$' or ';')"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, regex_engine="python-re")


def template_keys(template: str) -> list[str]:
    """The {keys} a str.format template uses; ValueError for a malformed one or an index/attribute use."""
    keys = []
    for _text, key, spec, conversion in string.Formatter().parse(template):
        if key is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or spec or conversion:
            raise ValueError(f"{{{key}}} is not a plain {{name}} placeholder")
        keys.append(key)
    return keys


# ------------------------------------------------------------------------------------------------ ssh


class SSHSettings(Strict):
    """pyinfra 3.10's SSH connector data (pyinfra/connectors/ssh.py DataMeta), as far as opsrun passes it on."""

    ssh_hostname: Hostname | None = Field(None, description="a host name or IP address")
    ssh_port: Port | None = Field(None, description=FIX_PORT)
    ssh_user: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")] | None = Field(
        None, description="a login name: lower-case letters, digits, '_', '.', '-'"
    )
    ssh_password: str | None = None
    ssh_key: AbsPath | None = Field(None, description=FIX_PATH)
    ssh_key_password: str | None = None
    ssh_allow_agent: bool | None = None
    ssh_look_for_keys: bool | None = None
    ssh_forward_agent: bool | None = None
    ssh_config_file: AbsPath | None = Field(None, description=FIX_PATH)
    ssh_known_hosts_file: AbsPath | None = Field(None, description=FIX_PATH)
    ssh_strict_host_key_checking: Literal["yes", "accept-new", "no", "off", "ask"] | None = Field(
        None, description="one of yes, accept-new, no, off, ask"
    )
    ssh_paramiko_connect_kwargs: dict[str, Any] | None = None
    ssh_connect_retries: Annotated[int, Field(ge=0, le=100)] | None = Field(None, description="a count from 0")
    ssh_connect_retry_min_delay: Annotated[float, Field(ge=0)] | None = None
    ssh_connect_retry_max_delay: Annotated[float, Field(ge=0)] | None = None
    ssh_file_transfer_protocol: Literal["sftp", "scp"] | None = None


# -------------------------------------------------------------------------------------- rolling policy

HEALTH_KEYS = ("host", "address")


class HealthGate(Strict):
    http: Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")] | None = Field(
        None, description='an http(s) URL, e.g. "http://{address}:3001/health" ({host} and {address} only)'
    )
    tcp: Port | None = Field(None, description=FIX_PORT)
    status: Annotated[int, Field(ge=100, le=599)] = Field(200, description="an HTTP status code such as 200")
    timeout: Seconds = Field(60.0, description="a number of seconds above 0")
    interval: Seconds = Field(0.25, description="a number of seconds above 0")

    @field_validator("http")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = [k for k in template_keys(value) if k not in HEALTH_KEYS]
            if unknown:
                raise ValueError(f"{{{unknown[0]}}} is not a placeholder of a health URL (use {{host}} or {{address}})")
        return value

    @model_validator(mode="after")
    def _one_probe(self) -> HealthGate:
        if (self.http is None) == (self.tcp is None):
            raise ValueError('a health gate needs exactly one of http or tcp, e.g. {"tcp": 6379}')
        return self


SERIAL_FIX = 'a count (1), a percentage ("25%") or a ramp such as [1, "50%", "100%"]'
BatchSize = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?%$")] | Annotated[int, Field(ge=1)]


class RollingPolicy(Strict):
    serial: BatchSize | Annotated[list[BatchSize], Field(min_length=1)] = Field(1, description=SERIAL_FIX)
    max_fail: Size = Field(0, description='a count of hosts (0, 1, ...) or a percentage ("10%")')
    drain_timeout: Seconds = Field(60.0, description="a number of seconds above 0")
    healthy_timeout: Seconds = Field(60.0, description="a number of seconds above 0")
    health: HealthGate | None = Field(None, description='{"http": URL, "status": 200} or {"tcp": PORT}')
    verify: bool | Name = Field(True, description="True (the deploy's own suite), False, or a folder of verify/")
    reboot: Literal["if-needed", "never", "always"] = Field("if-needed", description="if-needed, never or always")
    reboot_timeout: Seconds = Field(300.0, description="a number of seconds above 0")
    last: dict[Literal["mongo_primary"], Port] | None = Field(
        None, description='{"mongo_primary": PORT}: the hosts that probe says yes for go last'
    )
    waves: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = Field(
        None,
        description='a group-name prefix: roll wave by wave, e.g. "patch_" for patch_wave1, then patch_wave2',
    )

    @field_validator("serial", "max_fail")
    @classmethod
    def _percent_in_range(cls, value: Any, info: ValidationInfo) -> Any:
        for size in value if isinstance(value, list) else [value]:
            if isinstance(size, str):
                pct = float(size[:-1])
                if pct > 100 or (pct == 0 and info.field_name == "serial"):
                    raise ValueError(f"{size!r} is out of range (above 0 and at most 100%)")
        return value


# ------------------------------------------------------------------------------------------- balancers


class _BalancerBase(Strict):
    server: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9{}._:-]+$")] = Field(
        "{host}",
        description="a template of {host} and host data keys (e.g. {ssh_hostname}:3001), "
        "of letters, digits and ._:- only",
    )

    @field_validator("server")
    @classmethod
    def _server_keys_exist(cls, value: str, info: ValidationInfo) -> str:
        keys = template_keys(value)
        context = info.context or {}
        if "host_data" in context:
            data: dict[str, Any] = context["host_data"]
            usable = [
                "host",
                *sorted(k for k, v in data.items() if isinstance(v, str | int) and not isinstance(v, bool)),
            ]
            unknown = [k for k in keys if k not in usable]
            if unknown:
                raise ValueError(
                    f"{{{unknown[0]}}} is not a key of host {context.get('host')} (usable: {', '.join(usable)})"
                )
            rendered = value.format(host=context.get("host", ""), **{k: data[k] for k in keys if k != "host"})
            if not re.fullmatch(NAME_RE.replace("{0,127}", "{0,252}").rstrip("$") + "(:[0-9]{1,5})?$", rendered):
                raise ValueError(f"the server name {rendered!r} is not a plain name (letters, digits, ._- and :PORT)")
        return value


class HAProxyBalancer(_BalancerBase):
    type: Literal["haproxy"]
    socket: AbsPath = Field(description="the absolute path of HAProxy's admin socket, " + FIX_PATH)
    backend: Name = Field(description="the backend's name, " + FIX_NAME)
    timeout: Seconds = Field(5.0, description="a number of seconds above 0")


class NginxBalancer(_BalancerBase):
    type: Literal["nginx"]
    host: Name = Field(description="the name of the LB host in the inventory")
    upstream: Name = Field(description="the upstream block's name, " + FIX_NAME)
    config: AbsPath = Field(description="the absolute path of the file with the upstream block, " + FIX_PATH)
    timeout: Seconds = Field(30.0, description="a number of seconds above 0")

    @field_validator("host")
    @classmethod
    def _host_in_inventory(cls, value: str, info: ValidationInfo) -> str:
        hosts = (info.context or {}).get("inventory_hosts")
        if hosts is not None and value not in hosts:
            raise ValueError(f"{value!r} is not a host of the inventory (hosts: {', '.join(hosts)})")
        return value


class ELBv2Balancer(_BalancerBase):
    type: Literal["elbv2"]
    server: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9{}._:-]+$")] = Field(
        "{ec2_instance_id}",
        description="the target: {ec2_instance_id} (the default, set by opsrun.aws.ec2_hosts) for an instance "
        "target group, {ec2_private_ip} for an ip one",
    )
    target_group: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")] | None = Field(
        None, description="the target group's name (up to 32 letters, digits and '-')"
    )
    target_group_tags: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=128)],
            Annotated[str, StringConstraints(max_length=256)],
        ]
        | None
    ) = Field(None, description='tags that match exactly one target group, e.g. {"Env": "production", "Tier": "web"}')
    target_group_arn: (
        Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:[A-Za-z0-9:/_.-]+$")] | None
    ) = Field(None, description="the target group's ARN (arn:aws:elasticloadbalancing:...:targetgroup/NAME/ID)")
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")] | None = Field(
        None, description="an AWS region such as eu-west-1"
    )
    endpoint_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")] | None = None
    port: Port | None = Field(None, description=FIX_PORT)

    @model_validator(mode="after")
    def _one_target_group(self) -> ELBv2Balancer:
        given = [k for k in ("target_group", "target_group_tags", "target_group_arn") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of target_group (a name), target_group_tags or target_group_arn"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


Balancer = Annotated[HAProxyBalancer | NginxBalancer | ELBv2Balancer, Field(discriminator="type")]


class BalancerSetting(Strict):
    """A wrapper so `balancer` validates as one field (pydantic's discriminated union on `type`)."""

    balancer: Balancer | None = Field(description='{"type": "haproxy" | "nginx" | "elbv2", ...} or None')


class RollingSetting(Strict):
    rolling: RollingPolicy | None = Field(description='{"serial": 1, "max_fail": 0, ...} or None')


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
    cwd: AbsPath = Field(description="where the app lives on the host, " + FIX_PATH)
    instances: Annotated[int, Field(ge=1, le=1024)] = Field(1, description="a number of processes from 1, e.g. 2")
    exec_mode: Literal["fork", "cluster"] = Field("fork", description="fork or cluster")
    max_memory_restart: MEMORY = Field("300M", description='a size such as "200M"')
    listen_timeout_ms: Annotated[int, Field(ge=0)] = Field(10000, description="milliseconds, from 0")
    kill_timeout_ms: Annotated[int, Field(ge=0)] = Field(5000, description="milliseconds, from 0")
    env: dict[EnvName, Annotated[str, StringConstraints(pattern=LINE_RE)] | int | float | bool] = Field(
        default_factory=dict, description="{VARIABLE: value}: variable names of letters, digits and _"
    )
    secret_env: dict[EnvName, EnvName] = Field(
        default_factory=dict, description="{VARIABLE: NAME of the operator's environment variable}"
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
    secret_env: dict[EnvName, EnvName] = Field(
        default_factory=dict, description="{setting: NAME of the operator's environment variable}"
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


DEADLINE = "seconds above 0 and at most a week (604800)"


class StageDeadlines(Strict):
    """Per-host deadlines of the stages that touch a host (opsrun.deadlines)."""

    connect: float | None = Field(None, gt=0, le=604800, description=DEADLINE)
    apply: float | None = Field(None, gt=0, le=604800, description=DEADLINE)
    verify: float | None = Field(None, gt=0, le=604800, description=DEADLINE)


class DeadlinesSetting(Strict):
    deadlines: StageDeadlines

"""The schemas of the settings opsrun itself reads to reach and roll hosts: ssh_*, rolling (with its
health gate), balancer and deadlines."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from opsrun.settings.values import (
    FIX_NAME,
    FIX_PATH,
    FIX_PORT,
    NAME_RE,
    AbsPath,
    Hostname,
    Name,
    Port,
    Seconds,
    Size,
    Strict,
    template_keys,
)

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
    ssh_jump: (
        Annotated[str, StringConstraints(pattern=r"^([a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?$")]
        | None
    ) = Field(None, description='a bastion as [user@]host[:port], e.g. "admin@bastion.example.com"')


class SudoSettings(Strict):
    """pyinfra's escalation arguments set as host data (`_sudo = True` in group_data): opsrun applies them to
    every command it runs on the host, in and outside deploys. The keys lose their leading '_' here."""

    sudo: bool | None = Field(None, description="True or False")
    sudo_user: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")] | None = Field(
        None, description="a login name such as postgres"
    )
    sudo_password: str | None = Field(None, description="the SSH user's sudo password, from a secret source")
    use_sudo_password: bool | None = Field(None, description="True or False")
    use_sudo_login: bool | None = Field(None, description="True or False")
    preserve_sudo_env: bool | None = Field(None, description="True or False")

    @field_validator("sudo_password")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("it holds a line break: sudo reads one line")
        return value

    @field_validator("use_sudo_password")
    @classmethod
    def _password_given(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value and not info.data.get("sudo_password"):
            raise ValueError(
                "_use_sudo_password asks for a password, and opsrun never prompts: give _sudo_password (e.g. "
                'os.environ["SUDO_PASSWORD"] in group_data) or grant the SSH user NOPASSWD in sudoers'
            )
        return value


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


class CanaryPolicy(Strict):
    """rolling.canary: the first batch (or the first `hosts` hosts alone) is enabled and baked while the
    balancer's own statistics of its requests are read (opsrun.rollout.canary); the defaults are our users'
    runbooks' (error rate above 5 %, response time above 1 s, for 5 minutes)."""

    hosts: Annotated[int, Field(ge=1)] | None = Field(
        None, description="a count of hosts baked alone before the rest (1, 2, ...), or None: the first batch"
    )
    bake: Seconds = Field(300.0, description="the seconds the canary serves before its verdict, e.g. 300")
    error_rate: float = Field(
        5.0, gt=0, le=100, description="a percentage above 0 and at most 100: the 5xx share that fails the canary"
    )
    response_time: Seconds = Field(1.0, description="the seconds of mean response time that fail the canary")
    min_requests: Annotated[int, Field(ge=1)] = Field(
        100, description="a count of requests from 1: fewer over the bake is no verdict (never a pass)"
    )
    interval: Seconds = Field(5.0, description="the seconds between two reads of the balancer's statistics")

    @model_validator(mode="after")
    def _interval_within_bake(self) -> CanaryPolicy:
        if self.interval > self.bake:
            raise ValueError(f"interval ({self.interval:g}s) is longer than the bake ({self.bake:g}s)")
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
    canary: CanaryPolicy | None = Field(
        None,
        description='{"bake": 300, "error_rate": 5, "response_time": 1.0, "min_requests": 100} (or {} for those) '
        "to bake the first batch behind a haproxy or elbv2 balancer, or None",
    )
    pause: float = Field(0.0, ge=0, le=86400, description="the seconds to wait between two batches, from 0 to 86400")
    on_failure: Literal["halt", "rollback"] = Field(
        "halt",
        description='"halt" (stop: the failed host stays out, the hosts done stay changed) or "rollback" (the '
        "hosts this run changed go back to the last successful run's revision)",
    )

    @field_validator("serial", "max_fail")
    @classmethod
    def _percent_in_range(cls, value: Any, info: ValidationInfo) -> Any:
        for size in value if isinstance(value, list) else [value]:
            if isinstance(size, str):
                pct = float(size[:-1])
                batch = info.field_name == "serial"  # a batch is never empty; a failure budget may be 0%
                if pct > 100 or (pct == 0 and batch):
                    raise ValueError(f"{size!r} is out of range ({'above 0 and ' if batch else ''}at most 100%)")
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
    poll_interval: float = Field(
        3.0,
        ge=1,
        le=60,
        description="seconds between two reads of the targets' health while a batch drains or comes back "
        "(one DescribeTargetHealth for the batch each time), from 1 to 60",
    )
    poll_jitter: float = Field(
        0.2, ge=0, le=0.5, description="a fraction of poll_interval added or taken at random, from 0 to 0.5"
    )

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


DEADLINE = "seconds above 0 and at most a week (604800)"


class StageDeadlines(Strict):
    """Per-host deadlines of the stages that touch a host (opsrun.settings.deadlines)."""

    connect: float | None = Field(None, gt=0, le=604800, description=DEADLINE)
    apply: float | None = Field(None, gt=0, le=604800, description=DEADLINE)
    verify: float | None = Field(None, gt=0, le=604800, description=DEADLINE)


class DeadlinesSetting(Strict):
    deadlines: StageDeadlines

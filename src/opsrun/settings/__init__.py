"""Every setting opsrun or a deploy reads from group_data and inventories, validated for every host of a
command before anything connects (`check_hosts`), and read by the deploys through the same models
(`for_host`), so that a plain `pyinfra INVENTORY deploys/X.py` run refuses the same values.

`check_hosts` validates once and gives back what opsrun itself reads, as validated (`HostSettings` per host):
the rolling policy, the balancer, the deadlines, notify and dr are read from there, never from host data again.

A refused value is a ConfigError naming the file that set it (`Inventory.where`), the field path built from
pydantic's error location (`pm2_apps[0].instances`), what was expected, and the fix (the field's
description). The schemas are in `opsrun.settings.models`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from opsrun.errors import ConfigError
from opsrun.model.inventory import HOST_NAME
from opsrun.settings import models
from opsrun.settings.values import SECRETISH


@dataclass(frozen=True)
class Family:
    """The host data keys one model reads: `prefix` + field name (`pm2_` + `apps`), and `also` as they are."""

    name: str
    model: type[BaseModel]
    prefix: str
    also: tuple[str, ...] = ()

    def keys(self, data: Mapping[str, Any]) -> list[str]:
        return [k for k in data if self.owns(k)]

    def owns(self, key: str) -> bool:
        if key in self.also:
            return True
        if not key.startswith(self.prefix) or (key.endswith(("_rolling", "_balancer")) and self.prefix):
            return False
        return key != self.prefix.rstrip("_")

    def field(self, key: str) -> str:
        return key if key in self.also or not self.prefix else key[len(self.prefix) :]

    def key(self, field: str) -> str:
        return field if field in self.also or not self.prefix else self.prefix + field


DEPLOYS: dict[str, Family] = {
    "nginx": Family("nginx", models.NginxSettings, "nginx_"),
    "pm2": Family("pm2", models.Pm2Settings, "pm2_"),
    "patching": Family("patching", models.PatchingSettings, "patching_", also=("apt_repositories",)),
    "redis_cluster": Family("redis_cluster", models.RedisSettings, "redis_cluster_"),
    "mongo_replicaset": Family("mongo_replicaset", models.MongoSettings, "mongo_replicaset_"),
}
SSH = Family("ssh", models.SSHSettings, "")
SUDO = Family("sudo", models.SudoSettings, "_")  # _sudo -> sudo: pydantic fields cannot start with '_'
SUDO_KEYS = ("_sudo", "_sudo_user", "_sudo_password", "_use_sudo_password", "_use_sudo_login", "_preserve_sudo_env")


def _plain(value: Any) -> Any:
    """Tuples as lists (pyinfra data is often written with tuples); everything else as it is."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's ("pm2_apps", 0, "instances") as pm2_apps[0].instances; the first part is the key as the user
    wrote it (the command line's --max-fail too)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out and not _is_field(part):
            continue  # a union member's tag (constrained-str, int, function-after[...]) is no part of the path
        elif part in ("haproxy", "nginx", "elbv2") and out.endswith("balancer"):
            continue  # the discriminated union's tag is not part of the user's path
        else:
            out += f".{part}" if out else str(part)
    return out


def _is_field(part: str) -> bool:
    return part.isidentifier() and part not in ("int", "str", "float", "bool", "list", "dict", "none")


def _describe(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The description (the fix) of the deepest described field along `loc`."""
    found: str | None = None
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info: FieldInfo | None = current.model_fields.get(str(part))
        if info is None:
            current = _pick_model(current, str(part))
            continue
        found = info.description or found
        current = _inner_model(info.annotation)
    return found


def _pick_model(current: Any, tag: str) -> Any:
    return {"haproxy": models.HAProxyBalancer, "nginx": models.NginxBalancer, "elbv2": models.ELBv2Balancer}.get(
        tag, current
    )


def _inner_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


def _expected(error: Mapping[str, Any], path: str) -> str:
    """What was wrong, with the value given; never the value of a field that holds or names a secret (a
    secret typed where its environment variable's name belongs would be printed)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown setting."
    if error["type"] == "missing":
        return "missing."
    if "input" in error and SECRETISH.search(path):
        return f"{message} (the value given is not shown: this field holds or names a secret)."
    return f"{message} (got {error['input']!r})." if "input" in error else f"{message}."


def _telling(errors: list[Any]) -> Any:
    """The error that says what is wrong. A value that fits no member of a union gets one error per member
    (a serial of 0: "a valid string", "greater than or equal to 1", "a valid list"); the first of the same
    field (or an item of it) that is not about the value's type is the one for the member it was meant for.
    Otherwise the first."""
    field = field_path(tuple(errors[0]["loc"]))
    for error in errors:
        path = field_path(tuple(error["loc"]))
        items = path.removeprefix(field)
        if not error["type"].endswith("_type") and path.startswith(field) and re.fullmatch(r"(\[\d+\])*", items):
            return error
    return errors[0]


def _first_error(
    exc: ValidationError, model: type[BaseModel], where: Callable[[str], str], key_of: Callable[[str], str]
) -> ConfigError:
    error = _telling(exc.errors(include_url=False))
    loc = tuple(error["loc"])
    key = key_of(str(loc[0])) if loc else ""
    path = field_path((key, *loc[1:])) if loc else ""
    fix = _describe(model, loc)
    if error["type"] == "extra_forbidden":
        known = ", ".join(key_of(f) if len(loc) == 1 else f for f in _fields_at(model, loc[:-1]))
        fix = f"remove it, or use one of: {known}"
    return ConfigError(
        where(key),
        _expected(error, ".".join(str(part) for part in loc) + "." + key),
        field=path,
        fix=f"set {path} to {fix}" if fix and error["type"] != "extra_forbidden" else fix or "correct the value",
    )


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(str(part))
        current = _inner_model(info.annotation) if info else _pick_model(current, str(part))
    names = list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []
    return names


def validate_family(
    family: Family, data: Mapping[str, Any], *, where: Callable[[str], str], context: dict[str, Any] | None = None
) -> BaseModel:
    """The model of `family` from host `data`; ConfigError for the first refused value."""
    values = {family.field(k): _plain(data[k]) for k in family.keys(data)}
    try:
        return family.model.model_validate(values, context=context)
    except ValidationError as exc:
        raise _first_error(exc, family.model, where, family.key) from None


def validate_key(
    model: type[BaseModel], key: str, value: Any, *, where: str, context: dict[str, Any] | None = None
) -> Any:
    """One setting of a wrapper model (RollingSetting, BalancerSetting, DRSetting) whose one field is `key`'s."""
    field = next(iter(model.model_fields))
    try:
        validated = model.model_validate({field: _plain(value)}, context=context)
    except ValidationError as exc:
        raise _first_error(exc, model, lambda _k: where, lambda _f: key) from None
    return getattr(validated, field)


def validate_fields(
    model: type[BaseModel], values: Mapping[str, Any], *, where: str, names: Mapping[str, str]
) -> BaseModel:
    """Some fields of `model` given elsewhere than in host data (the command line's --serial), checked by the
    same schema; a refusal names the field as `names` says (max_fail -> --max-fail)."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise _first_error(exc, model, lambda _k: where, lambda f: names.get(f, f)) from None


def policy_keys(data: Mapping[str, Any]) -> list[tuple[str, type[BaseModel]]]:
    """rolling, balancer and every DEPLOY_rolling / DEPLOY_balancer among the host's keys."""
    out: list[tuple[str, type[BaseModel]]] = []
    for key in data:
        if key == "rolling" or key.endswith("_rolling"):
            out.append((key, models.RollingSetting))
        elif key == "balancer" or key.endswith("_balancer"):
            out.append((key, models.BalancerSetting))
    return out


@dataclass(frozen=True)
class HostSettings:
    """The settings opsrun reads of one host, as their schemas validated them (`check_host`)."""

    rolling: dict[str, models.RollingPolicy | None]  # rolling and DEPLOY_rolling, as set
    balancer: dict[str, models.Balancer | None]  # balancer and DEPLOY_balancer, as set
    dr: models.DRSettings | None = None
    deadlines: models.StageDeadlines | None = None
    notify: models.NotifySettings | None = None


Checked = Mapping[str, HostSettings]  # host -> its validated settings (check_hosts)


def check_host(inv: Any, host: str) -> HostSettings:
    """Every setting of one inventory host, and its name; ConfigError naming the file, the field and the fix.
    What opsrun reads of them, validated."""
    data = inv.hosts[host].data
    if not HOST_NAME.fullmatch(host):
        raise ConfigError(
            inv.path,
            f"host name {host!r} is not one word of letters, digits, '.', '_' and '-' (SSH and the verify "
            "suites would read part of it as a user, a port or a path, and reach another host).",
            field=(inv.hosts[host].groups or ("all",))[0],
            fix='name the host that way and give its address as ("name", {"ssh_hostname": "..."})',
        )

    def where(key: str) -> str:
        return str(inv.where(host, key)) if key in data else str(inv.path)

    context = {"host": host, "host_data": dict(data), "inventory_hosts": list(inv.hosts)}
    validate_family(SSH, {k: v for k, v in data.items() if k.startswith("ssh_")}, where=where)
    validate_family(SUDO, {k: v for k, v in data.items() if k in SUDO_KEYS}, where=where)
    _register_passwords(data)
    for family in DEPLOYS.values():
        validate_family(family, data, where=where)
    found: dict[str, dict[str, Any]] = {"rolling": {}, "balancer": {}}
    for key, model in policy_keys(data):
        kind = "rolling" if model is models.RollingSetting else "balancer"
        found[kind][key] = validate_key(model, key, data[key], where=where(key), context=context)
    wrappers: dict[str, type[BaseModel]] = {
        "dr": models.DRSetting,
        "deadlines": models.DeadlinesSetting,
        "notify": models.NotifySetting,
    }
    one = {key: validate_key(model, key, data[key], where=where(key)) for key, model in wrappers.items() if key in data}
    _check_picklable(data, host, where)
    return HostSettings(found["rolling"], found["balancer"], **one)


def _register_passwords(data: Mapping[str, Any]) -> None:
    """Passwords of the connection, masked wherever opsrun prints (a sudo error, a debug log)."""
    from opsrun.model import secrets

    for key in ("_sudo_password", "ssh_password", "ssh_key_password"):
        if isinstance(data.get(key), str) and data[key]:
            secrets.register(data[key])


def _check_picklable(data: Mapping[str, Any], host: str, where: Callable[[str], str]) -> None:
    """Host data goes to the pyinfra worker process by pickle: a value that cannot go is refused here."""
    import pickle

    for key, value in data.items():
        try:
            pickle.dumps(value)
        except Exception as exc:  # noqa: BLE001 - pickle raises many kinds (TypeError, PicklingError, ...)
            raise ConfigError(
                where(key),
                f"the value of host {host} cannot be passed to pyinfra ({type(exc).__name__}: {exc}).",
                field=key,
                fix="use plain data: strings, numbers, booleans, lists and dicts",
            ) from None


def check_hosts(inv: Any, hosts: list[str]) -> dict[str, HostSettings]:
    """Every setting of every host of a command, before anything connects; what opsrun reads of them, validated."""
    return {host: check_host(inv, host) for host in hosts}


def for_host(host: Any, family: str) -> Any:
    """A deploy's validated settings for the pyinfra `host` it runs on, inside opsrun or in a plain
    `pyinfra INVENTORY deploys/X.py` run: `settings.for_host(host, "pm2").apps[0].instances`. `family` is a
    deploy's name (the `DEPLOY_*` keys, see DEPLOYS) or "ssh" (the connection data, `ssh_hostname`...).

    Refused values raise the ConfigError opsrun itself gives before it connects (`check_host`): the same
    file, field path and fix, the same plain-text secret rule (`secrets.check_plain_text`). The file is
    found as opsrun finds it, from the project pyinfra runs in (its cwd) and the inventory named by one of
    the host's groups (pyinfra puts every host in the group named after its inventory file)."""
    from opsrun.model import secrets

    data = host.data.dict() if hasattr(host.data, "dict") else dict(host.data)
    if family == "ssh":
        data, chosen = {k: v for k, v in data.items() if k.startswith("ssh_")}, SSH
    else:
        chosen = DEPLOYS[family]
    where = _source_finder(host)
    model = validate_family(chosen, data, where=where)
    for key in chosen.keys(data):
        try:
            secrets.check_plain_text(key, data[key], "")
        except ConfigError as exc:
            raise ConfigError(where(key), exc.problem, field=exc.field, fix=exc.fix) from None
    return model


def _source_finder(host: Any) -> Callable[[str], str]:
    """key -> the file that set it for a pyinfra `host` (called only for an error message)."""

    def where(key: str) -> str:
        from opsrun.model import inventory
        from opsrun.model.project import Project

        root = Path(getattr(getattr(host, "state", None), "cwd", None) or Path.cwd())
        for group in getattr(host, "groups", ()):
            if (root / "inventories" / f"{group}.py").is_file():
                try:
                    inv = inventory.load(Project(root), str(group))
                except ConfigError:
                    break
                if host.name in inv.hosts:
                    return inv.where(host.name, key)
        return f"group_data or the inventory (host {host.name}, {key})"

    return where

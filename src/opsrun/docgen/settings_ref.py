"""The settings reference page, read from the pydantic schemas of opsrun.settings: every group_data key
opsrun or a deploy reads, and every field of the settings nested in them, with its type, default and what
to set (the field's description: the fix an error message gives)."""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass

from pydantic import BaseModel

from opsrun.docgen import types
from opsrun.docgen.markdown import cell, escape
from opsrun.settings import DEPLOYS, SSH, SUDO, SUDO_KEYS, Family, models
from opsrun.settings.values import EnvSecret, SecretsManagerSecret, SsmSecret

INTRO = """\
Every setting opsrun or a deploy reads from group_data (or an inventory's host data), as its schema in
`src/opsrun/settings/` says. Each is checked for every host of a command before anything connects: a wrong
type (`"2"` is not 2, `True` is not a port), a misspelt key (`nginx_listen_prot`) or a value outside its
bounds stops the command with exit 2, naming the file, the key and the fix ("what to set" below). See
[Settings](../settings.md) for how they are read and merged.

`DEPLOY_rolling` and `DEPLOY_balancer` (`patching_rolling`, `redis_cluster_balancer = None`) take the place
of `rolling` and `balancer` for that deploy. `aws_checks`, read by the controller-scoped suite `verify/aws/`,
is described in [Production](../production.md)."""

SECRETS_INTRO = """\
A `secret_env` entry says where a secret's value is kept, never the value itself. It is read once per run
on the machine opsrun runs on, masked in every output, and a reference that cannot be read stops the
command with exit 2 before any host is touched. See [Secrets](../secrets.md). The forms:

- `"ENV_NAME"`: the operator's environment variable of that name, the same as `{"env": "ENV_NAME"}`."""

#: the balancer types, one table each under `balancer`
BALANCERS: tuple[type[BaseModel], ...] = (models.HAProxyBalancer, models.NginxBalancer, models.ELBv2Balancer)


@dataclass(frozen=True)
class Section:
    """A group_data setting (or a family of keys) and the model that checks it."""

    title: str
    model: type[BaseModel]
    read_by: str
    family: Family | None = None  # keys are family.key(field); else `key.field` (a dict setting)
    key: str = ""


def sections() -> list[Section]:
    """The top-level settings, in the order the page gives them."""
    deploy_sections = [
        Section(f"{f.prefix}*" + "".join(f", {k}" for k in f.also), f.model, f"deploys/{name}.py", family=f)
        for name, f in DEPLOYS.items()
    ]
    return [
        Section("ssh_*", models.SSHSettings, "every connection to the host (pyinfra, verify, leases)", family=SSH),
        Section(
            "sudo: " + ", ".join(SUDO_KEYS), models.SudoSettings, "every command opsrun runs on the host", family=SUDO
        ),
        Section("rolling", models.RollingPolicy, "opsrun apply (a rolling apply)", key="rolling"),
        Section("deadlines", models.StageDeadlines, "apply, verify and drift (per host)", key="deadlines"),
        *deploy_sections,
        Section("dr", models.DRSettings, "opsrun dr-test", key="dr"),
        Section("notify", models.NotifySettings, "opsrun drift and dr-test (the systemd units)", key="notify"),
    ]


def anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def link(model: type[BaseModel]) -> str:
    return f"[{model.__name__}](#{anchor(model)})"


def table(model: type[BaseModel], key_of: dict[str, str]) -> list[str]:
    """The model's fields (`type` first): key as written in group_data, type, default, what to set."""
    rows = ["| key | type | default | what to set |", "|---|---|---|---|"]
    for name, info in sorted(model.model_fields.items(), key=lambda item: item[0] != "type"):
        kind = " ".join(types.describe(info.annotation, link, list(info.metadata)).split())
        rows.append(f"| `{key_of.get(name, name)}` | {kind} | {types.default(info)} | {cell(info.description or '')} |")
    return rows


def model_section(
    model: type[BaseModel], heading: str, where: str, key_of: dict[str, str], level: str = "###"
) -> list[str]:
    """A heading (anchored by the model's name), the model's docstring, where it is set, its table."""
    text = " ".join(inspect.cleandoc(model.__doc__ or "").split())
    about = [escape(text), ""] if text else []
    where_lines = [where, ""] if where else []
    return [f"{level} {heading} {{#{anchor(model)}}}", "", *about, *where_lines, *table(model, key_of), ""]


def keys_of(section: Section) -> dict[str, str]:
    """field -> the key a user writes for it (`pm2_apps`, `rolling.health`)."""
    fields = section.model.model_fields
    if section.family is not None:
        return {name: section.family.key(name) for name in fields}
    return {name: f"{section.key}.{name}" for name in fields}


def top_section(section: Section) -> list[str]:
    where = f"Read by {section.read_by}."
    if section.family is None:
        where = f"`{section.key}` in group_data: a dict of the keys below. " + where
    return model_section(section.model, escape(section.title), where, keys_of(section), level="##")


def holders(model: type[BaseModel], key_of: dict[str, str], found: dict[type[BaseModel], list[str]]) -> None:
    """Each model `model`'s fields hold, deepest last, with where it is written: `found[Pm2App]` gets
    "each item of `pm2_apps`". Models already in `found` (documented elsewhere) are not walked again."""
    for name, info in model.model_fields.items():
        key = key_of.get(name, name)
        origin = typing.get_origin(info.annotation)
        place = f"`{key}`" if origin not in (list, dict) else f"each {'item' if origin is list else 'value'} of `{key}`"
        for inner in types.models_in(info.annotation):
            if inner in (EnvSecret, SecretsManagerSecret, SsmSecret):
                continue
            seen = inner in found
            found.setdefault(inner, []).append(place)
            if not seen:
                holders(inner, {n: f"{key}.{n}" for n in inner.model_fields}, found)


def balancer_sections() -> list[str]:
    out = [
        "## balancer",
        "",
        '`balancer = {"type": ...}` (or `DEPLOY_balancer`; `None`: no balancer) in group_data. Read by opsrun apply',
        "(drain, enable) and drift (is each host in its balancer?). `type` picks one of:",
        "",
    ]
    for model in BALANCERS:
        key_of = {name: f"balancer.{name}" for name in model.model_fields}
        out += model_section(model, model.__name__, "", key_of)
    return out


def secret_sections() -> list[str]:
    out = ["## Secret references", "", SECRETS_INTRO]
    for model in (EnvSecret, SecretsManagerSecret, SsmSecret):
        out.append(f"- {link(model)}: {escape(inspect.cleandoc(model.__doc__ or ''))}")
    out.append("")
    for model in (EnvSecret, SecretsManagerSecret, SsmSecret):
        out += model_section(model, model.__name__, "", {})
    return out


def walk() -> tuple[dict[type[BaseModel], list[str]], dict[type[BaseModel], int]]:
    """Every model the settings hold, with where each is written, and the top section it is first met in."""
    found: dict[type[BaseModel], list[str]] = {s.model: [] for s in sections()}
    first: dict[type[BaseModel], int] = {}
    for index, section in enumerate(sections()):
        before = set(found)
        holders(section.model, keys_of(section), found)
        first.update((model, index) for model in found if model not in before)
    return found, first


def page() -> str:
    """The whole page, Markdown."""
    out = ["# Settings reference", "", INTRO, ""]
    found, first = walk()
    for index, section in enumerate(sections()):
        out += top_section(section)
        for model in (m for m in found if first.get(m) == index):
            out += model_section(model, model.__name__, f"Set as {', '.join(found[model])}.", {})
        if section.key == "rolling":
            out += balancer_sections()
    out += secret_sections()
    return "\n".join(out).rstrip("\n") + "\n"


def keys() -> list[str]:
    """Every key and field the page must name: each top-level setting's keys as written in group_data
    (`pm2_apps`, `rolling.serial`, `balancer.socket`) and the fields of every model nested in them."""
    found = ["rolling", "balancer", "deadlines", "dr", "notify"]
    for section in sections():
        found += list(keys_of(section).values())
    for model in BALANCERS:
        found += [f"balancer.{name}" for name in model.model_fields]
    tops = {section.model for section in sections()}
    for model in documented_models():
        if model not in tops and not model.__name__.endswith("Balancer"):
            found += list(model.model_fields)
    return found


def documented_models() -> list[type[BaseModel]]:
    found, _first = walk()
    return [*found, *BALANCERS, EnvSecret, SecretsManagerSecret, SsmSecret]

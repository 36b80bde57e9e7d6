"""Load `inventories/NAME.py` and `group_data/*.py` with the semantics of pyinfra's CLI.

pyinfra_cli/inventory.py is followed rule for rule, without importing pyinfra here (the engine package is the
one that does): every module-level list or `(hosts, data)` tuple is a group, names starting with `_`
are ignored, the file's stem is a group of every host, `group_data/GROUP.py` module variables are that
group's data (imported names left out), `all.py` is the global data. Precedence for a host's data:
host data > group data (later groups win) > all. The result is plain data that the engine turns into a
pyinfra Inventory and opsrun.hosts.sshconfig into SSH settings.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model import patterns
from opsrun.model.project import Project

# The name of a host opsrun reaches is one word that OpenSSH (a `Host` pattern, a destination) and testinfra (a
# URL) read as it is: `admin@web1`, `web1:2222` or `web1/x` would be taken for a user, a port or a path of
# another host (opsrun.settings.check_host refuses them; plain pyinfra keeps its `@connector/...` names).
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

HostEntry = str | tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Inventory:
    name: str
    path: Path
    all_hosts: list[HostEntry]  # pyinfra's (names, data) pair for "all"
    all_data: dict[str, Any]
    groups: dict[str, tuple[list[HostEntry], dict[str, Any]]]  # in pyinfra's order, without "all"
    hosts: dict[str, Host] = field(default_factory=dict)
    sources: dict[str, dict[str, Path]] = field(default_factory=dict)  # group ("all" too) -> key -> group_data file
    overrides: dict[str, Any] = field(default_factory=dict)  # --data: over every host's data, for this run

    def where(self, host: str, key: str) -> str:
        """The file a host's value for `key` comes from (the winner by precedence), for error messages."""
        if key in self.overrides:
            return "--data"
        groups = ["all", *self.hosts[host].groups]
        for group in reversed(groups):
            if key in self.sources.get(group, {}):
                return str(self.sources[group][key])
        return str(self.path)

    def select(self, limit: str | Iterable[str] | None) -> list[str]:
        """Host names the --limit values name (Ansible host patterns, see opsrun.model.patterns); all without one."""
        if limit is None:
            return list(self.hosts)
        return patterns.select(self, [limit] if isinstance(limit, str) else limit)


def _name(entry: HostEntry) -> str:
    return entry[0] if isinstance(entry, tuple) else entry


def _exec(path: Path) -> dict[str, Any]:
    try:
        source = path.read_text(encoding="utf-8")
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ConfigError(
            path, f"line {exc.lineno}: syntax error: {exc.msg}.", fix="correct the Python syntax"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"is not UTF-8 text (byte {exc.start}).", fix="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror}.") from exc
    namespace: dict[str, Any] = {"__file__": str(path)}
    try:
        exec(code, namespace)  # noqa: S102 - inventories and group data are Python, as in pyinfra
    except ConfigError:  # already names its file, field and fix (e.g. opsrun.aws.ec2_hosts)
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a file of settings does not end the command
        raise ConfigError(path, f"raised {type(exc).__name__}: {exc}.", fix="correct the file") from exc
    return namespace


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
    return names


def _check_group(path: Path, key: str, value: Any) -> list[HostEntry]:
    hosts = value[0] if isinstance(value, tuple) else value
    if isinstance(value, tuple) and (len(value) != 2 or not isinstance(value[1], dict)):
        raise ConfigError(
            path,
            "a group must be a list of hosts or a (hosts, data) tuple with a dict of data.",
            field=key,
            fix=f"write {key} = ([...hosts], {{...data}})",
        )
    for entry in hosts:
        ok = isinstance(entry, str) or (
            isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], dict)
        )
        if not ok:
            raise ConfigError(
                path, f"invalid host entry {entry!r}.", field=key, fix='write a host as "name" or ("name", {...data})'
            )
    return list(hosts)


def group_data_files(project: Project, inventory_path: Path) -> list[Path]:
    folders = [project.group_data_dir]
    beside = inventory_path.parent / "group_data"
    if beside.resolve() != project.group_data_dir.resolve():
        folders.append(beside)
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.glob("*.py"))]


def data_overrides(values: Iterable[str]) -> dict[str, Any]:
    """`--data KEY=VALUE` (repeatable) as {KEY: VALUE}: VALUE read as JSON or a Python literal when it is one
    (512, true, ["a"], {"serial": 2}), else as the string it is. The schemas then check it like group_data."""
    out: dict[str, Any] = {}
    for item in values:
        key, equals, text = item.partition("=")
        if not equals or not key.isidentifier() or key.startswith("_"):
            raise ConfigError(
                "the command line",
                f"{item!r} is not KEY=VALUE with KEY a group_data variable name.",
                field="--data",
                fix="write --data nginx_worker_connections=512 (a value in JSON or Python syntax, or a plain string)",
            )
        out[key] = _value(text)
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def load(project: Project, name: str, overrides: Mapping[str, Any] | None = None) -> Inventory:
    """The inventory with its group_data, and `overrides` (--data) over every host's data."""
    path = project.inventory_path(name)
    groups = _groups(path)
    all_hosts, all_data = groups.pop("all", ([], {}))
    if not all_hosts:
        for hosts, _data in groups.values():
            all_hosts += [_name(h) for h in hosts if _name(h) not in [_name(a) for a in all_hosts]]
    if not all_hosts:
        raise ConfigError(path, "defines no hosts.", fix='add a group, e.g. web = ["web1", "web2"]')
    groups.setdefault(path.stem, (list(all_hosts), {}))
    all_data, sources = _add_group_data(group_data_files(project, path), groups, all_data)
    inv = Inventory(name, path, all_hosts, all_data, groups, sources=sources, overrides=dict(overrides or {}))
    inv.hosts.update(_hosts(path, groups, all_hosts, all_data, inv.overrides))
    return inv


def _groups(path: Path) -> dict[str, tuple[list[HostEntry], dict[str, Any]]]:
    """The groups an inventory file defines: each module-level list or (hosts, data) tuple not named `_...`."""
    groups: dict[str, tuple[list[HostEntry], dict[str, Any]]] = {}
    for key, value in _exec(path).items():
        if not key.startswith("_") and isinstance(value, str):
            raise ConfigError(
                path,
                f"a group must be a list of hosts, not the string {value!r}.",
                field=key,
                fix=f"write {key} = [{value!r}] (or name it _{key} if it is not a group)",
            )
        if key.startswith("_") or not isinstance(value, list | tuple):
            continue
        hosts = _check_group(path, key, value)
        groups[key] = (hosts, dict(value[1]) if isinstance(value, tuple) else {})
    return groups


def _add_group_data(
    files: list[Path], groups: dict[str, tuple[list[HostEntry], dict[str, Any]]], all_data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Path]]]:
    """Merge each group_data file's variables into its group's data (`all.py` into the global data, which is
    returned); and which file set each key of each group."""
    sources: dict[str, dict[str, Path]] = {}
    for gd in files:
        attrs = _exec(gd)
        keys = attrs["__all__"] if "__all__" in attrs else [k for k in attrs if k not in _imported_names(gd)]
        data = {k: v for k, v in attrs.items() if k in keys and not k.startswith("__")}
        sources.setdefault(gd.stem, {}).update(dict.fromkeys(data, gd))
        if gd.stem == "all":
            all_data = {**all_data, **data}
        else:
            hosts, existing = groups.get(gd.stem, ([], {}))
            groups[gd.stem] = (hosts, {**existing, **data})
    return all_data, sources


def _hosts(
    path: Path,
    groups: dict[str, tuple[list[HostEntry], dict[str, Any]]],
    all_hosts: list[HostEntry],
    all_data: dict[str, Any],
    overrides: dict[str, Any],
) -> dict[str, Host]:
    """Each host with its groups and its data by precedence: --data > host data > group data (later groups
    win) > all."""
    host_data: dict[str, dict[str, Any]] = {}
    host_groups: dict[str, list[str]] = {}
    for gname, (hosts, _gdata) in groups.items():
        for entry in hosts:
            if gname not in host_groups.setdefault(_name(entry), []):
                host_groups[_name(entry)].append(gname)
            if isinstance(entry, tuple):
                _add_host_data(path, gname, entry, host_data.setdefault(entry[0], {}))
    for entry in all_hosts:
        if isinstance(entry, tuple):
            host_data.setdefault(entry[0], {}).update(entry[1])
    hosts_by_name = {}
    for entry in all_hosts:
        hname = _name(entry)
        merged = dict(all_data)
        for gname in host_groups.get(hname, []):
            merged.update(groups[gname][1])
        merged.update(host_data.get(hname, {}))
        merged.update(overrides)
        hosts_by_name[hname] = Host(hname, tuple(host_groups.get(hname, [])), merged)
    return hosts_by_name


def _add_host_data(path: Path, group: str, entry: tuple[str, dict[str, Any]], known: dict[str, Any]) -> None:
    """Add a host's data as one group lists it to what other groups gave it; a value that differs is refused."""
    clash = [k for k, v in entry[1].items() if k in known and known[k] != v]
    if clash:
        raise ConfigError(
            path,
            f"host {entry[0]} is listed twice with different {clash[0]} "
            f"({known[clash[0]]!r} and {entry[1][clash[0]]!r}).",
            field=group,
            fix="give a host one set of data: list it once with its data, and by name elsewhere",
        )
    known.update(entry[1])

"""What the command line says about a run on hosts besides its inventory and deploy or suite (`Options`), what
it gives every run alike (`Session`), the hosts it selects, checked, and `list_hosts`: those hosts, their groups
and batches, with nothing touched."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opsrun import rollout, settings
from opsrun.model import inventory
from opsrun.model.project import Project
from opsrun.store import RETRY, Store, open_store


@dataclass(frozen=True)
class Options:
    """The knobs a run on hosts takes from the command line (defaults: as group_data says, every host)."""

    limit: tuple[str, ...] = ()  # --limit: Ansible host patterns (opsrun.model.patterns); () is every host
    data: Mapping[str, Any] = field(default_factory=dict)  # --data: over group_data, for this run only
    forks: int | None = None  # --forks: at most this many hosts at once (None: every host of a stage)
    deadlines: Mapping[str, float] = field(default_factory=dict)  # --deadline STAGE=SECONDS
    allow_unreachable: bool = False  # --allow-unreachable: hosts that cannot be reached do not fail the run
    diff: bool = False  # --diff: a real apply reports each file it changes as a diff


@dataclass(frozen=True)
class Session:
    """What the command line gives every run alike, besides its knobs: where the run history is kept (--state;
    None: SQLite in the project) and how long a store that stopped answering is retried (--state-retry), the
    stop SIGINT/SIGTERM set, and where the notes for the operator go (None: nowhere)."""

    state_url: str | None = None
    state_retry: float = RETRY
    stop: threading.Event | None = None
    on_notice: Callable[[str], None] | None = None

    def open_store(self, project: Project) -> Store:
        """The project's state store: at --state, else SQLite under .opsrun/; retried for --state-retry."""
        return open_store(project.state_dir, self.state_url, retry=self.state_retry)

    def notice(self, message: str) -> None:
        """Tell the operator `message` through `on_notice` (without it: no one)."""
        if self.on_notice is not None:
            self.on_notice(message)


def hosts_of(
    project: Project, inventory_name: str, options: Options
) -> tuple[inventory.Inventory, list[str], settings.Checked]:
    """The inventory (with --data), the hosts --limit selects, and what opsrun reads of their settings, every
    setting of each checked (settings.check_hosts)."""
    inv = inventory.load(project, inventory_name, options.data)
    hosts = inv.select(options.limit or None)
    return inv, hosts, settings.check_hosts(inv, hosts)


@dataclass(frozen=True)
class HostList:
    """The hosts a command would work on, in its order, each with its groups and (a rollout) its batch."""

    inventory: str
    hosts: dict[str, tuple[str, ...]]  # name -> its groups
    batches: list[list[str]] = field(default_factory=list)  # empty: every host at once
    max_fail: int | None = None
    probed_last: bool = False  # the policy moves some hosts last once asked (at apply time, not here)

    def to_dict(self) -> dict[str, Any]:
        batch_of = {h: i for i, batch in enumerate(self.batches, 1) for h in batch}
        return {
            "kind": "hosts",
            "inventory": self.inventory,
            "hosts": [{"name": h, "groups": list(g), "batch": batch_of.get(h)} for h, g in self.hosts.items()],
            "batches": self.batches,
            "max_fail": self.max_fail,
            "probed_last": self.probed_last,
        }


def list_hosts(
    project: Project,
    inventory_name: str,
    options: Options,
    *,
    deploy: str | None = None,
    serial: Any = None,
    max_fail: Any = None,
) -> HostList:
    """What `--list-hosts` prints: the selected hosts and, for an apply with a rolling policy, its batches.
    Every input is checked as the run would check it; nothing is connected to."""
    inv, hosts, checked = hosts_of(project, inventory_name, options)
    if deploy is None:
        return HostList(inv.name, {h: inv.hosts[h].groups for h in hosts})
    project.deploy_path(deploy)
    policy = rollout.load_policy(inv, hosts, checked, deploy=deploy, serial=serial, max_fail=max_fail)
    if policy is None:
        return HostList(inv.name, {h: inv.hosts[h].groups for h in hosts})
    from opsrun.runs.applying import plan_of

    hosts, plan = plan_of(inv, hosts, policy, probe=False)  # connects to nothing: `last` is found at apply
    assert plan is not None
    batches = [list(b) for b in plan.batches]
    return HostList(inv.name, {h: inv.hosts[h].groups for h in hosts}, batches, plan.max_fail, bool(policy.last))

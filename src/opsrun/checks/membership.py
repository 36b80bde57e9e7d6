"""Membership: is each host of an inventory in its balancer, and when it is not, who left it out.

Every host with a `balancer` (or `DEPLOY_balancer`) in its data is asked of that balancer's own view
(HAProxy `show servers state`/`show stat`, nginx's upstream, the ALB's target health). A host that is
drained, disabled, in maintenance, deregistered or unhealthy is *out*; the state store says who left it so
when opsrun knows (a run that did not finish, a run that failed on it) and whether it is held on purpose
(`opsrun hold`). Drift turns each into an `out_of_balancer` finding; apply and verify name the hosts an
unfinished run left out, with the command that brings them back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opsrun import balancers, settings
from opsrun.balancers.base import NOT_ANSWERING, ServerState
from opsrun.errors import ConfigError
from opsrun.model import inventory
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.settings import models
from opsrun.store import Hold, LeftBy, Store, open_store

NOBODY = "nobody opsrun knows of"


@dataclass(frozen=True)
class Out:
    """A host out of its balancer: what the balancer says, who left it so, and how it comes back."""

    host: str
    balancer: str  # the balancer's name ("haproxy backend web")
    state: str  # what the balancer says ("web2: drain, healthy, 0 sessions")
    left_by: LeftBy | None
    held: Hold | None
    fix: str

    @property
    def who(self) -> str:
        return str(self.left_by) if self.left_by is not None else NOBODY


def balancer_keys(data: dict[str, Any]) -> list[str]:
    """The host's balancer settings: `balancer` and every `DEPLOY_balancer` that names one (not None), as
    settings.check_host finds them."""
    return [k for k, model in settings.policy_keys(data) if model is models.BalancerSetting and data[k] is not None]


def read(inv: Inventory, hosts: list[str]) -> tuple[dict[str, list[tuple[str, ServerState]]], dict[str, str]]:
    """Each host's state in each of its balancers ({host: [(balancer name, state)]}), and the hosts whose
    balancer could not answer ({host: why}). One balancer object per distinct setting."""
    made: dict[str, tuple[models.Balancer, balancers.Balancer]] = {}  # the setting as JSON -> (validated, built)
    states: dict[str, list[tuple[str, ServerState]]] = {}
    errors: dict[str, str] = {}
    for host in hosts:
        data = dict(inv.hosts[host].data)
        for key in balancer_keys(data):
            ident = json.dumps(data[key], sort_keys=True, default=str)
            try:
                if ident not in made:
                    setting = balancers.validate(data[key], where=inv.where(host, key), key=key)
                    made[ident] = setting, balancers.make(setting, where=inv.where(host, key), inventory=inv)
                setting, bal = made[ident]
                state = bal.state(balancers.server_name(setting, host, data))
            except NOT_ANSWERING as exc:
                errors[host] = f"{key}: {exc}"
                continue
            if all(name != bal.name for name, _s in states.get(host, [])):
                states.setdefault(host, []).append((bal.name, state))
    return states, errors


def fix_for(inventory: str, host: str, left_by: LeftBy | None) -> str:
    if left_by is not None and left_by.deploy:
        return f"opsrun apply {inventory} {left_by.deploy} --limit {host}"
    return f"put {host} back in its balancer, or mark it: opsrun hold {inventory} {host} --reason TEXT"


def out_of_balancer(store: Store, inv: Inventory, hosts: list[str]) -> tuple[list[Out], dict[str, str]]:
    """The hosts of `hosts` that their balancer does not serve, each with who left it so; and the hosts whose
    balancer could not be asked."""
    states, errors = read(inv, hosts)
    left, held = store.left_out(inv.name), store.holds(inv.name)
    found = []
    for host, seen in states.items():
        for name, state in seen:
            if not state.in_service:
                by = left.get(host)
                found.append(Out(host, name, str(state), by, held.get(host), fix_for(inv.name, host, by)))
    return found, errors


def unfinished_notices(
    store: Store,
    inv: Inventory,
    selected: list[str],
    notice: Callable[[str], None],
    *,
    heals: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """Name every host of the inventory that a run which did not finish left out of its balancer, and is still
    out (its balancer says so, or cannot be asked), with the command that brings it back; `heals`: this run
    (without `dry_run`: the apply it plans) brings back the selected ones first. Returns them."""
    left = {h: by for h, by in store.left_out(inv.name).items() if by.unfinished and h in inv.hosts}
    if not left:
        return []
    states, errors = read(inv, sorted(left))
    still = [h for h in sorted(left) if h in errors or any(not s.in_service for _n, s in states.get(h, []))]
    for host in still:
        if host not in selected:
            where = "this run does not touch it (not in its selection)"
        else:
            brings = "the apply without --dry-run brings" if dry_run else "this run brings"
            where = f"{brings} it back first" if heals else "this run does not bring it back"
        asked = f" (its balancer could not be asked: {errors[host]})" if host in errors else ""
        notice(
            f"{host} is out of the balancer{asked}: {left[host]} and left it so; {where}; "
            f"bring it back: {fix_for(inv.name, host, left[host])}"
        )
    return still


def hold(project: Project, inventory_name: str, host: str, reason: str, state_url: str | None) -> Hold:
    """Mark `host` as out of its balancer on purpose (the mark only: nothing is drained)."""
    inv = _host_of(project, inventory_name, host)
    if not reason.strip() or len(reason) > 200 or any(ord(c) < 32 for c in reason):
        raise ConfigError(
            "the command line", "the reason must be one line of 1 to 200 characters.", field="--reason",
            fix='say why, e.g. --reason "disk replacement, ticket OPS-123"',
        )  # fmt: skip
    with contextlib.closing(open_store(project.state_dir, state_url)) as store:
        return store.hold(inv.name, host, reason.strip())


def release(project: Project, inventory_name: str, host: str, state_url: str | None) -> Hold | None:
    """Remove the mark; the hold that was removed (None: there was none)."""
    inv = _host_of(project, inventory_name, host)
    with contextlib.closing(open_store(project.state_dir, state_url)) as store:
        return store.release(inv.name, host)


def _host_of(project: Project, inventory_name: str, host: str) -> Inventory:
    inv = inventory.load(project, inventory_name)
    if host not in inv.hosts:
        raise ConfigError(
            inv.path, f"no host {host!r} in inventory {inv.name}.", field="HOST",
            fix=f"name one of: {', '.join(inv.hosts)}",
        )  # fmt: skip
    return inv

"""The rolling policy of a rollout: group_data's `rolling` and `balancer` as opsrun.settings validated them
(`check_hosts`, once) and the command line's overrides (checked by the same schema), as one `Policy`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsrun import settings
from opsrun.errors import ConfigError
from opsrun.hosts.health import Gate, HealthCheck
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.rollout.plan import Plan, Size, make_plan
from opsrun.settings import models
from opsrun.verification.controller import is_controller_suite


@dataclass(frozen=True)
class Policy:
    serial: tuple[Size, ...] = (1,)
    max_fail: Size = 0
    drain_timeout: float = 60.0
    healthy_timeout: float = 60.0
    health: Gate | None = None  # HealthCheck of the validated `health`
    verify: str | bool = True  # True: the deploy's own suite, when there is one
    reboot: str = "if-needed"
    reboot_timeout: float = 300.0
    balancer: models.Balancer | None = None  # the validated `balancer`, None: no balancer step
    last: dict[str, Any] | None = None  # role probes: hosts they say yes for go last (opsrun.hosts.probes)
    waves: str | None = None  # group-name prefix: roll wave by wave (group_waves)
    canary: models.CanaryPolicy | None = None  # bake the first batch, judged by the balancer's statistics
    pause: float = 0.0  # seconds between two batches
    on_failure: str = "halt"  # past the failure budget: "halt", or "rollback" (opsrun.runs.rolling_back)
    key: str = "rolling"  # the group_data key it came from (DEPLOY_rolling: the deploy's own)

    def plan(self, hosts: list[str], waves: list[tuple[str, list[str]]] | None = None) -> Plan:
        """The batches of `hosts` (rollout.plan.make_plan), the first a canary when there is one."""
        canary = self.canary is not None
        size = self.canary.hosts if self.canary is not None else None
        return make_plan(hosts, self.serial, self.max_fail, waves, canary=canary, canary_hosts=size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": list(self.serial),
            "max_fail": self.max_fail,
            "drain_timeout": self.drain_timeout,
            "healthy_timeout": self.healthy_timeout,
            "verify": self.verify,
            "reboot": self.reboot,
            "health": str(self.health) if self.health else None,
            "balancer": self.balancer.type if self.balancer is not None else None,
            "last": self.last,
            "waves": self.waves,
            "canary": self.canary.model_dump() if self.canary else None,
            "pause": self.pause,
            "on_failure": self.on_failure,
        }


def load_policy(
    inv: Inventory,
    hosts: list[str],
    checked: settings.Checked,
    *,
    deploy: str | None = None,
    serial: Any = None,
    max_fail: Any = None,
) -> Policy | None:
    """The rolling policy of `hosts` from their validated settings (`checked`: settings.check_hosts's; `rolling`,
    `balancer`), with CLI overrides. A deploy's own `DEPLOY_rolling` / `DEPLOY_balancer` replace them for that
    deploy (`DEPLOY_balancer = None`: none).

    None when the hosts have neither and no override asks for batches: a plain parallel apply.
    Every host of one rollout must share one policy and one balancer.
    """
    if not hosts:
        return None
    first = hosts[0]

    def own(key: str) -> str:
        mine = f"{deploy}_{key}"
        return mine if deploy and any(mine in inv.hosts[h].data for h in hosts) else key

    rolling_key, balancer_key = own("rolling"), own("balancer")
    _one_value(inv, hosts, (rolling_key, balancer_key))
    rolling, balancer = checked[first].rolling.get(rolling_key), checked[first].balancer.get(balancer_key)
    if rolling is None and balancer is None and serial is None and max_fail is None:
        return None
    rolling = rolling or models.RollingPolicy()
    if rolling.canary is not None:
        _check_canary_source(balancer, where=inv.where(first, rolling_key), field=f"{rolling_key}.canary")
    rolling = _overridden(rolling, serial=serial, max_fail=max_fail)
    return Policy(
        serial=tuple(rolling.serial if isinstance(rolling.serial, list) else [rolling.serial]),
        max_fail=rolling.max_fail,
        drain_timeout=float(rolling.drain_timeout),
        healthy_timeout=float(rolling.healthy_timeout),
        health=HealthCheck(rolling.health) if rolling.health is not None else None,
        verify=rolling.verify,
        reboot=rolling.reboot,
        reboot_timeout=float(rolling.reboot_timeout),
        balancer=balancer,
        last={str(k): v for k, v in rolling.last.items()} if rolling.last is not None else None,
        waves=rolling.waves,
        canary=rolling.canary,
        pause=float(rolling.pause),
        on_failure=rolling.on_failure,
        key=rolling_key,
    )


def _overridden(rolling: models.RollingPolicy, **flags: Any) -> models.RollingPolicy:
    """`rolling` with the command line's --serial and --max-fail (those given), checked by its schema."""
    given = {field: value for field, value in flags.items() if value is not None}
    if not given:
        return rolling
    names = {field: "--" + field.replace("_", "-") for field in given}
    checked = settings.validate_fields(models.RollingPolicy, given, where="the command line", names=names)
    return rolling.model_copy(update={field: getattr(checked, field) for field in given})


def host_suite(project: Project, inv: Inventory, deploy: str, policy: Policy) -> str | None:
    """The suite each host is verified with: one that checks hosts (a controller-scoped suite's results
    are the controller's, so no host would pass it)."""
    if policy.verify is False:
        return None
    if policy.verify is True:
        own = deploy in project.suites()
        return deploy if own and not is_controller_suite(project.suite_path(deploy)) else None
    name = str(policy.verify)
    if is_controller_suite(project.suite_path(name)):  # suite_path: ConfigError with the choices
        raise ConfigError(
            inv.where(next(iter(inv.hosts)), policy.key),
            f"verify/{name} checks from the controller (opsrun_scope = 'controller'), not on a host, and a "
            "rollout verifies each host as it passes its gate.",
            field=f"{policy.key}.verify",
            fix=f"name a suite that checks hosts, or false; run `opsrun verify {inv.name} {name}` after the rollout",
        )
    return name


def _one_value(inv: Inventory, hosts: list[str], keys: tuple[str, ...]) -> None:
    """Every host of one rollout has the same value of each of `keys`; a ConfigError naming two that differ."""
    first = hosts[0]
    for key in keys:
        values = {h: inv.hosts[h].data.get(key) for h in hosts}
        odd = [h for h in hosts if values[h] != values[first]]
        if odd:
            raise ConfigError(
                inv.where(odd[0], key),
                f"hosts {first} and {odd[0]} of this rollout differ.",
                field=key,
                fix="give the hosts of one rollout one value, or use --limit",
            )


# balancer type -> why a canary cannot be judged behind it (the others keep per-server statistics)
NO_STATISTICS = {
    "nginx": "open source nginx keeps no per-server statistics of the requests it passes (no 5xx count, "
    "no response time per upstream server)",
}


def _check_canary_source(balancer: models.Balancer | None, *, where: str, field: str) -> None:
    """A canary is judged from the balancer's own statistics: refused without a balancer that keeps them."""
    kind = balancer.type if balancer is not None else None
    if kind is None or kind in NO_STATISTICS:
        why = NO_STATISTICS.get(str(kind), "these hosts have no balancer")
        raise ConfigError(
            where,
            f"a canary is judged from the balancer's per-server statistics, and {why}.",
            field=field,
            fix="remove canary (a rolling apply without it), or put the hosts behind a haproxy or elbv2 balancer",
        )

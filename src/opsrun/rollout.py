"""Rolling plans: which hosts go in which batch, and how many may fail before the rollout stops.

Pure logic, no I/O. `serial` is a count (`2`), a percentage of the rollout's hosts (`"25%"`), or a ramp
(`[1, "50%", "100%"]`): entry i sizes batch i, the last entry repeats. A percentage is rounded down, and a
batch is never empty. `max_fail` is the failure budget for the whole rollout, in hosts (`1`) or percent
(`"10%"`, rounded down); the rollout halts once more hosts than that have failed. A ramp that starts with
1 is a canary: one host alone first.

`waves` (a group-name prefix such as `"patch_"`) orders a rollout wave by wave: the hosts of each group
starting with the prefix (patch_wave1, patch_wave2, ..., in natural order) form a wave, hosts in none
form a last wave, and each wave is batched on its own (`serial` applies within the wave, so a batch never
spans two waves). The failure budget is the whole rollout's: a rollout that halts in wave 1 never starts
wave 2.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from opsrun import engine, reboot, settings
from opsrun import verify as verify_module
from opsrun.balancers.base import Balancer, wait_drained, wait_healthy
from opsrun.deadlines import Deadlines
from opsrun.errors import ConfigError
from opsrun.health import HealthGate
from opsrun.inventory import Inventory
from opsrun.project import Project
from opsrun.results import DeployRun, HostOutcome, RolloutRun, VerifyRun
from opsrun.settings import models

PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
SERIAL_FIX = 'use a count (1), a percentage ("25%") or a ramp such as [1, "50%", "100%"]'

Size = int | str  # a count, or "N%"


def _size(value: Any, *, where: str, field: str, allow_zero: bool = False) -> Size:
    if isinstance(value, bool):
        raise ConfigError(where, f"{value!r} is not a count or a percentage.", field=field, fix=SERIAL_FIX)
    if isinstance(value, int):
        if value < (0 if allow_zero else 1):
            raise ConfigError(
                where,
                f"{value} is not allowed here.",
                field=field,
                fix="use a count of at least " + ("0" if allow_zero else "1"),
            )
        return value
    if isinstance(value, str) and (m := PERCENT.match(value.strip())):
        pct = float(m.group(1))
        if pct > 100 or (pct == 0 and not allow_zero):
            lowest = "0" if allow_zero else "more than 0"
            raise ConfigError(where, f"{value!r} is out of range.", field=field, fix=f"use {lowest} and at most 100%")
        return value.strip()
    raise ConfigError(where, f"{value!r} is not a count or a percentage.", field=field, fix=SERIAL_FIX)


def parse_serial(value: Any, *, where: str, field: str = "serial") -> tuple[Size, ...]:
    if isinstance(value, list | tuple):
        if not value:
            raise ConfigError(where, "an empty ramp has no batches.", field=field, fix=SERIAL_FIX)
        return tuple(_size(v, where=where, field=field) for v in value)
    return (_size(value, where=where, field=field),)


def parse_max_fail(value: Any, *, where: str, field: str = "max_fail") -> Size:
    return _size(value, where=where, field=field, allow_zero=True)


def resolve(size: Size, total: int) -> int:
    """A size as a number of hosts out of `total` (percentages rounded down)."""
    if isinstance(size, int):
        return size
    m = PERCENT.match(size)
    assert m is not None
    return int(total * float(m.group(1)) / 100)


def batch_sizes(serial: tuple[Size, ...], total: int) -> list[int]:
    sizes: list[int] = []
    left = total
    i = 0
    while left > 0:
        want = max(1, resolve(serial[min(i, len(serial) - 1)], total))
        sizes.append(min(want, left))
        left -= sizes[-1]
        i += 1
    return sizes


@dataclass(frozen=True)
class Plan:
    batches: tuple[tuple[str, ...], ...]
    max_fail: int  # hosts that may fail; one more halts the rollout
    waves: tuple[str, ...] = ()  # with a `waves` policy: the wave of each batch

    @property
    def hosts(self) -> list[str]:
        return [h for batch in self.batches for h in batch]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"batches": [list(b) for b in self.batches], "max_fail": self.max_fail}
        if self.waves:
            doc["waves"] = list(self.waves)
        return doc


def make_plan(
    hosts: list[str], serial: tuple[Size, ...], max_fail: Size = 0, waves: list[tuple[str, list[str]]] | None = None
) -> Plan:
    """Batches in inventory order (already narrowed by --limit); with `waves` (from `group_waves`), each
    wave batched on its own, in wave order."""
    batches: list[tuple[str, ...]] = []
    labels: list[str] = []
    for label, members in waves if waves is not None else [("", hosts)]:
        start = 0
        for size in batch_sizes(serial, len(members)):
            batches.append(tuple(members[start : start + size]))
            labels.append(label)
            start += size
    return Plan(tuple(batches), resolve(max_fail, len(hosts)), tuple(labels) if waves is not None else ())


NO_WAVE = "(no wave)"


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def group_waves(hosts: list[str], groups: dict[str, tuple[str, ...]], prefix: str) -> list[tuple[str, list[str]]]:
    """The waves of `hosts`: (group, its hosts in `hosts` order) for each group of `groups` (host -> its
    groups) that starts with `prefix`, in natural order (wave2 before wave10); hosts in none last, as
    NO_WAVE. A host in two wave groups goes with the first."""
    found: dict[str, list[str]] = {}
    for h in hosts:
        mine = sorted((g for g in groups.get(h, ()) if g.startswith(prefix)), key=_natural)
        found.setdefault(mine[0] if mine else NO_WAVE, []).append(h)
    order = sorted((w for w in found if w != NO_WAVE), key=_natural) + ([NO_WAVE] if NO_WAVE in found else [])
    return [(w, found[w]) for w in order]


# ---------------------------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Policy:
    serial: tuple[Size, ...] = (1,)
    max_fail: Size = 0
    drain_timeout: float = 60.0
    healthy_timeout: float = 60.0
    health: HealthGate | None = None
    verify: str | bool = True  # True: the deploy's own suite, when there is one
    reboot: str = "if-needed"
    reboot_timeout: float = 300.0
    balancer: dict[str, Any] | None = None  # group_data `balancer`, None: no balancer step
    last: dict[str, Any] | None = None  # role probes: hosts they say yes for go last (opsrun.probes)
    waves: str | None = None  # group-name prefix: roll wave by wave (group_waves)

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": list(self.serial),
            "max_fail": self.max_fail,
            "drain_timeout": self.drain_timeout,
            "healthy_timeout": self.healthy_timeout,
            "verify": self.verify,
            "reboot": self.reboot,
            "health": self.health.http or f"tcp:{self.health.tcp}" if self.health else None,
            "balancer": (self.balancer or {}).get("type"),
            "last": self.last,
            "waves": self.waves,
        }


def load_policy(
    inv: Inventory, hosts: list[str], *, deploy: str | None = None, serial: Any = None, max_fail: Any = None
) -> Policy | None:
    """The rolling policy of `hosts` from group_data (`rolling`, `balancer`), with CLI overrides. A deploy's
    own `DEPLOY_rolling` / `DEPLOY_balancer` replace them for that deploy (`DEPLOY_balancer = None`: none).

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
    for key in (rolling_key, balancer_key):
        values = {h: inv.hosts[h].data.get(key) for h in hosts}
        odd = [h for h in hosts if values[h] != values[first]]
        if odd:
            raise ConfigError(
                inv.where(odd[0], key),
                f"hosts {first} and {odd[0]} of this rollout differ.",
                field=key,
                fix="give the hosts of one rollout one value, or use --limit",
            )
    data = inv.hosts[first].data
    if data.get(rolling_key) is None and data.get(balancer_key) is None and serial is None and max_fail is None:
        return None
    context = {"host": first, "host_data": dict(data), "inventory_hosts": list(inv.hosts)}
    where = inv.where(first, rolling_key)
    rolling = (
        settings.validate_key(models.RollingSetting, rolling_key, data.get(rolling_key), where=where)
        or models.RollingPolicy()
    )
    balancer = data.get(balancer_key)
    if balancer is not None:
        settings.validate_key(
            models.BalancerSetting, balancer_key, balancer, where=inv.where(first, balancer_key), context=context
        )
    gate = rolling.health
    cli = "the command line"
    return Policy(
        serial=parse_serial(serial, where=cli, field="--serial")
        if serial is not None
        else tuple(rolling.serial if isinstance(rolling.serial, list) else [rolling.serial]),
        max_fail=parse_max_fail(max_fail, where=cli, field="--max-fail") if max_fail is not None else rolling.max_fail,
        drain_timeout=float(rolling.drain_timeout),
        healthy_timeout=float(rolling.healthy_timeout),
        health=HealthGate(**gate.model_dump()) if gate is not None else None,
        verify=rolling.verify,
        reboot=rolling.reboot,
        reboot_timeout=float(rolling.reboot_timeout),
        balancer=dict(balancer) if balancer is not None else None,
        last={str(k): v for k, v in rolling.last.items()} if rolling.last is not None else None,
        waves=rolling.waves,
    )


# -------------------------------------------------------------------------------------------- the executor

Events = Callable[[int, str, str], None]  # (batch, host, stage) as each stage starts


def _connect(project: Project, inv: Inventory, hosts: list[str], *, deadlines: Deadlines) -> dict[str, str | None]:
    timeout = max((deadlines.of(h, "connect") for h in hosts), default=10.0)
    return engine.check_connect(project, inv, hosts, connect_timeout=timeout).errors


def _apply(project: Project, inv: Inventory, deploy: str, hosts: list[str], *, deadlines: Deadlines) -> DeployRun:
    timeout = max((deadlines.of(h, "connect") for h in hosts), default=10.0)
    return engine.run_deploy(
        project, inv, deploy, hosts, deadlines=deadlines.stage("apply", hosts), connect_timeout=timeout
    )


def _verify(project: Project, inv: Inventory, suite: str, hosts: list[str], *, deadlines: Deadlines) -> VerifyRun:
    timeout = max((deadlines.of(h, "connect") for h in hosts), default=10.0)
    return verify_module.run_suite(
        project, inv, suite, hosts, deadlines=deadlines.stage("verify", hosts), connect_timeout=timeout
    )


def _reboot(reboot_mode: str, timeout: float, inv: Inventory) -> Callable[[str], object]:
    return functools.partial(reboot.reboot_if_needed, inv, mode=reboot_mode, timeout=timeout)


@dataclass
class StageRunners:
    """The functions the executor calls for its stages; the real ones by default, fakes in unit tests."""

    connect: Callable[..., dict[str, str | None]] = _connect
    apply: Callable[..., DeployRun] = _apply
    verify: Callable[..., VerifyRun] = _verify
    balancer: Balancer | None = None
    reboot_if_needed: Callable[[str, float, Inventory], Callable[[str], object]] = _reboot


def _parallel(hosts: list[str], fn: Callable[[str], object]) -> dict[str, Exception | None]:
    """Run fn for every host at once; per host the exception it raised, or None."""

    def one(host: str) -> Exception | None:
        try:
            fn(host)
        except Exception as exc:  # noqa: BLE001 - reported per host by the caller
            return exc
        return None

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(hosts), 64)) as pool:
        return dict(zip(hosts, pool.map(one, hosts), strict=True))


class Rollout:
    """Walks a plan through the stages of DESIGN.md "Rolling apply, step by step"."""

    def __init__(
        self,
        project: Project,
        inv: Inventory,
        deploy: str,
        policy: Policy,
        *,
        parts: StageRunners | None = None,
        events: Events | None = None,
        stop: threading.Event | None = None,
        deadlines: Deadlines | None = None,
        record: Callable[[HostOutcome], None] | None = None,
    ):
        self.project, self.inv, self.deploy, self.policy = project, inv, deploy, policy
        self.parts = parts or StageRunners()
        self.events = events or (lambda _b, _h, _s: None)
        self.stop = stop or threading.Event()
        self.deadlines = deadlines or Deadlines({})
        self.record = record or (lambda _h: None)
        self.balancer = self.parts.balancer
        if self.balancer is None and policy.balancer is not None:
            from opsrun import balancers

            where = inv.where(next(iter(inv.hosts)), "balancer")
            self.balancer = balancers.make(policy.balancer, where=where, inventory=inv)
        self.suite = self._suite()

    def _suite(self) -> str | None:
        if self.policy.verify is False:
            return None
        if self.policy.verify is True:
            return self.deploy if self.deploy in self.project.suites() else None
        self.project.suite_path(str(self.policy.verify))  # ConfigError with the choices when it does not exist
        return str(self.policy.verify)

    def server(self, host: str) -> str:
        from opsrun.balancers import server_name

        return server_name(self.policy.balancer or {}, host, dict(self.inv.hosts[host].data))

    def address(self, host: str) -> str:
        return str(self.inv.hosts[host].data.get("ssh_hostname", host))

    def check(self, hosts: list[str]) -> None:
        """Everything that can be found wrong before a host is touched."""
        if self.balancer is not None:
            self.balancer.check([self.server(h) for h in hosts])
            delay = getattr(self.balancer, "deregistration_delay", None)  # read by check (ELBv2)
            if delay is not None and self.policy.drain_timeout < delay and hosts:
                data = self.inv.hosts[hosts[0]].data
                key = f"{self.deploy}_rolling" if f"{self.deploy}_rolling" in data else "rolling"
                raise ConfigError(
                    self.inv.where(hosts[0], key),
                    f"the drain timeout ({self.policy.drain_timeout:g}s) is shorter than the deregistration "
                    f"delay of {self.balancer.name} ({delay:g}s): draining hosts would time out.",
                    field=f"{key}.drain_timeout",
                    fix=f"set drain_timeout to at least {delay:g}, or lower the target group's "
                    "deregistration_delay.timeout_seconds",
                )

    def run(self, hosts: list[str], plan: Plan | None = None) -> RolloutRun:
        plan = plan or make_plan(hosts, self.policy.serial, self.policy.max_fail)
        self.check(plan.hosts)
        started = time.monotonic()
        self.result = RolloutRun(
            self.inv.name,
            self.deploy,
            plan.to_dict(),
            self.policy.to_dict(),
            {
                h: HostOutcome(h, i, target=self.server(h) if self.balancer else None)
                for i, batch in enumerate(plan.batches, 1)
                for h in batch
            },
        )
        for i, batch in enumerate(plan.batches, 1):
            if self.stop.is_set():
                self.result.interrupted = True
                break
            try:
                self._batch(i, list(batch))
            except Exception as exc:  # noqa: BLE001 - an opsrun fault mid-batch: its hosts fail, the run reports
                self._fault(batch, exc)
            failed = sum(h.outcome == "failed" for h in self.result.hosts.values())
            if failed > plan.max_fail and not self.result.halted:
                self.result.halted = f"{failed} failed host(s), over the failure budget of {plan.max_fail}"
            if self.result.halted:
                break
            if self.stop.is_set():
                self.result.interrupted = True
                break
        self.result.seconds = time.monotonic() - started
        return self.result

    def _fault(self, batch: tuple[str, ...], exc: Exception) -> None:
        """An unexpected error inside a batch: every host of it not yet done fails at the stage it was in,
        with what is known of its place in the balancer, and the rollout halts."""
        why = f"opsrun error: {type(exc).__name__}: {exc}"
        for h in batch:
            out = self.result.hosts[h]
            if out.outcome != "done":
                out.fail(out.stage or "connect", out.reason or why, in_balancer=out.in_balancer)
                self.record(out)
        self.result.halted = why

    def heal(self, hosts: list[str]) -> dict[str, str]:
        """Hosts a dead run left drained: back through the health gate into the balancer, before anything
        else. Per host what happened (a host that fails the gate stays out, and says why)."""
        if self.balancer is None or not hosts:
            return {}
        bal, gate = self.balancer, self.policy.health

        def back(h: str) -> None:
            if gate is not None:
                gate.wait(h, self.address(h))
            bal.enable(self.server(h))
            wait_healthy(bal, self.server(h), self.policy.healthy_timeout)

        outcome = {}
        for h, exc in _parallel(hosts, back).items():
            if exc is None:
                outcome[h] = "back in the balancer: it passed its health gate"
            else:
                with contextlib.suppress(Exception):
                    bal.drain(self.server(h))
                outcome[h] = f"still out of the balancer: {exc}"
        return outcome

    def _timed(self, stage: str, batch: int, hosts: list[str]) -> _StageTimer:
        for h in hosts:
            self.events(batch, h, stage)
        return _StageTimer(self.result, stage, [self.result.hosts[h] for h in hosts], self.record)

    def _fail_errored(
        self, errors: dict[str, Exception | None], stage: str, live: list[str], *, in_balancer: bool
    ) -> list[str]:
        """Fail the hosts whose stage raised; the hosts still live."""
        for host, exc in errors.items():
            if exc is not None:
                self.result.hosts[host].fail(stage, str(exc), in_balancer=in_balancer)
                self.record(self.result.hosts[host])
        return [h for h in live if errors.get(h) is None]

    def _each(self, hosts: list[str], fn: Callable[[str], object]) -> dict[str, Exception | None]:
        """fn for each host in turn (balancer commands); per host what it raised, so one host's balancer
        error is that host's failure, not the end of the run."""
        errors: dict[str, Exception | None] = {}
        for h in hosts:
            try:
                fn(h)
                errors[h] = None
            except Exception as exc:  # noqa: BLE001 - that host's failure at this stage
                errors[h] = exc
        return errors

    def _batch(self, i: int, batch: list[str]) -> None:
        out = self.result.hosts
        bal = self.balancer

        with self._timed("connect", i, batch):
            errors = self.parts.connect(self.project, self.inv, batch, deadlines=self.deadlines)
        for host, error in errors.items():
            if error:  # never drained: the balancer is not touched for it
                out[host].fail("connect", error, in_balancer=True)
                self.record(out[host])
        live = [h for h in batch if not errors.get(h)]
        if self.stop.is_set():
            return

        gate = self.policy.health
        healthy_before = self._healthy_now(live) if gate is not None else {}
        serving_before: dict[str, bool] = {}
        if bal is not None and live:
            with self._timed("drain", i, live):

                def drain(h: str) -> None:
                    serving_before[h] = bal.state(self.server(h)).in_service
                    out[h].in_balancer = False  # from here on it may be out: a crash must not hide that
                    self.record(out[h])
                    bal.drain(self.server(h))

                drained = self._each(live, drain)
                # the drain command itself failed: the balancer did not take it out, it serves as before
                live = self._fail_errored(drained, "drain", live, in_balancer=True)
                waited = _parallel(live, lambda h: wait_drained(bal, self.server(h), self.policy.drain_timeout))
            live = self._fail_errored(waited, "drain", live, in_balancer=False)
            if self.stop.is_set():  # nothing applied yet: put them back untouched
                put_back = self._each(live, lambda h: bal.enable(self.server(h)))
                for h in live:
                    if put_back[h] is None:
                        out[h].in_balancer = True
                    else:
                        out[h].fail("drain", f"could not be put back: {put_back[h]}", in_balancer=False)
                    self.record(out[h])
                return

        if live:
            with self._timed("apply", i, live):
                run = self.parts.apply(self.project, self.inv, self.deploy, live, deadlines=self.deadlines)
            for hr in run.hosts:
                out[hr.name].run = hr
                if hr.failed:
                    bad = hr.failed_operation()
                    reason = hr.error or (f"operation {bad.name!r} failed: {bad.error}" if bad else "failed")
                    out[hr.name].fail("apply", reason, in_balancer=out[hr.name].in_balancer)
                    self.record(out[hr.name])
            live = [h for h in live if out[h].outcome != "failed"]

        if self.policy.reboot != "never" and live:
            with self._timed("reboot", i, live):
                maybe_reboot = self.parts.reboot_if_needed(self.policy.reboot, self.policy.reboot_timeout, self.inv)
                waited = _parallel(live, lambda h: setattr(out[h], "rebooted", bool(maybe_reboot(h))))
            live = self._fail_errored(waited, "reboot", live, in_balancer=bal is None)

        if gate is not None and live:
            # A host whose gate did not pass before the change (the other half of its stack is not
            # deployed yet) is not held to it now: the change did not take it out of service.
            held = [h for h in live if healthy_before.get(h, True)]
            with self._timed("health", i, live):
                waited = _parallel(held, lambda h: gate.wait(h, self.address(h)))
            for h in live:
                if h not in held:
                    ok, seen = gate.probe(h, self.address(h))
                    if not ok:
                        out[h].add_note(f"its health gate did not pass before the change and still does not ({seen})")
            live = self._fail_errored(waited, "health", live, in_balancer=bal is None)

        if self.suite and live:
            with self._timed("verify", i, live):
                vr = self.parts.verify(self.project, self.inv, self.suite, live, deadlines=self.deadlines)
            for h in list(live):
                failing = [r for r in vr.for_host(h) if r.outcome in ("failed", "error")]
                if vr.error or failing or not vr.for_host(h):
                    why = vr.error or "; ".join(f"{r.test}: {r.message}" for r in failing) or "no test ran"
                    out[h].fail("verify", f"verify/{self.suite}: {why}", in_balancer=bal is None)
                    self.record(out[h])
            live = [h for h in live if out[h].outcome != "failed"]

        if bal is not None and live:
            with self._timed("enable", i, live):
                enabled = self._each(live, lambda h: bal.enable(self.server(h)))
                live = self._fail_errored(enabled, "enable", live, in_balancer=False)
                # A host that was not serving before (a new host, or one whose other half of the stack is
                # not deployed yet) is put back in but not held to serving now: the change did not take
                # it out of service, and the balancer's own health check still decides.
                held = [h for h in live if serving_before.get(h, True)]
                waited = _parallel(held, lambda h: wait_healthy(bal, self.server(h), self.policy.healthy_timeout))
                for h in live:
                    if h not in held and not self._in_service(h):
                        out[h].add_note(
                            f"{bal.name} reported it unhealthy before the change and still does: "
                            "enabled, and its health check decides when it serves"
                        )
                not_serving = [h for h, exc in waited.items() if exc is not None]
                for h, exc in self._each(not_serving, lambda h: bal.drain(self.server(h))).items():
                    if exc is not None:  # it cannot serve and could not be taken out again: say both
                        waited[h] = Exception(f"{waited[h]}; taking it out again failed too: {exc}")
            live = self._fail_errored(waited, "enable", live, in_balancer=False)
            for h in live:
                out[h].in_balancer = True

        for h in live:
            out[h].outcome, out[h].stage = "done", None
            self.record(out[h])

    def _healthy_now(self, hosts: list[str]) -> dict[str, bool]:
        """One probe of the health gate per host, before anything changes."""
        gate = self.policy.health
        assert gate is not None
        seen: dict[str, bool] = {}
        _parallel(hosts, lambda h: seen.__setitem__(h, gate.probe(h, self.address(h))[0]))
        return seen

    def _in_service(self, host: str) -> bool:
        assert self.balancer is not None
        try:
            return self.balancer.state(self.server(host)).in_service
        except Exception:  # noqa: BLE001 - only feeds a note
            return False


class _StageTimer:
    def __init__(self, result: RolloutRun, stage: str, hosts: list[HostOutcome], record: Callable[[HostOutcome], None]):
        self.result, self.stage, self.hosts = result, stage, hosts
        self.record = record

    def __enter__(self) -> _StageTimer:
        self.start = time.monotonic()
        for h in self.hosts:
            h.stage = self.stage
            self.record(h)
        return self

    def __exit__(self, *exc: object) -> None:
        took = time.monotonic() - self.start
        self.result.stage_seconds[self.stage] = self.result.stage_seconds.get(self.stage, 0.0) + took
        for h in self.hosts:
            h.seconds[self.stage] = took

"""The rollout executor: walks a plan batch by batch through the stages (connect, check, drain, apply, reboot, health
gate, verify, enable; from the reboot to the verification each host goes on by itself, rollout.settle; a canary batch
is then baked and judged, rollout.canary; `pause` waits between batches) and records each host's outcome. A failure
stops the rollout after its batch: failed hosts stay out of the balancer, hosts done stay in, hosts not reached are
left untouched.

Two ways to stop early besides a failure: `halt` (the state store stopped answering: the hosts in flight finish, no
new host is drained) and the operator's stop (`waiting.Stop`): the first at the next safe point, the second (`now`)
at once: the apply's running commands and every wait are ended, each host in flight is interrupted at its stage, put
back when nothing was changed on it and left out otherwise, and its place is read back from the balancer."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable

from opsrun.balancers.base import wait_all
from opsrun.errors import ConfigError, Interrupted
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import HostOutcome, RolloutRun
from opsrun.rollout import canary, healing, stopping
from opsrun.rollout.plan import Plan
from opsrun.rollout.policy import Policy, host_suite
from opsrun.rollout.settle import Settle, StepFailed
from opsrun.rollout.stages import BatchVerify, StageRunners, StageTimer, parallel
from opsrun.settings.deadlines import Deadlines
from opsrun.support import waiting

Events = Callable[[int, str, str], None]  # (batch, host, stage) as each stage starts


class Rollout:
    """Walks a plan through the stages, batch by batch (see the module's docstring)."""

    def __init__(
        self,
        project: Project,
        inv: Inventory,
        deploy: str,
        policy: Policy,
        *,
        runners: StageRunners | None = None,
        events: Events | None = None,
        stop: threading.Event | None = None,
        deadlines: Deadlines | None = None,
        record: Callable[[HostOutcome], None] | None = None,
    ):
        self.project, self.inv, self.deploy, self.policy = project, inv, deploy, policy
        self.runners = runners or StageRunners()
        self.events = events or (lambda _b, _h, _s: None)
        self.stop = stop or threading.Event()
        self.deadlines = deadlines or Deadlines({})
        self.record = record or (lambda _h: None)
        self.now = waiting.now_of(self.stop)  # the operator's second Ctrl-C
        self.halting: str | None = None  # why the rollout drains no new host (`halt`)
        self.balancer = self.runners.balancer
        if self.balancer is None and policy.balancer is not None:
            from opsrun import balancers

            where = inv.where(next(iter(inv.hosts)), "balancer")
            self.balancer = balancers.make(policy.balancer, where=where, inventory=inv)
        self.suite = host_suite(project, inv, deploy, policy)
        # hosts held to their gate and to serving whatever they did before (a rollback's: they served before
        # the run it undoes), and per host whether this rollout held it
        self.held: set[str] = set()
        self.was_held: dict[str, bool] = {}

    def server(self, host: str) -> str:
        from opsrun.balancers import server_name

        return server_name(self.policy.balancer, host, dict(self.inv.hosts[host].data))

    def address(self, host: str) -> str:
        return str(self.inv.hosts[host].data.get("ssh_hostname", host))

    def check(self, hosts: list[str]) -> None:
        """Everything that can be found wrong before a host is touched."""
        if self.balancer is not None:
            self.balancer.check([self.server(h) for h in hosts])
            delay = getattr(self.balancer, "deregistration_delay", None)  # read by check (ELBv2)
            if delay is not None and self.policy.drain_timeout < delay and hosts:
                key = self.policy.key  # rolling, or the deploy's own DEPLOY_rolling
                raise ConfigError(
                    self.inv.where(hosts[0], key),
                    f"the drain timeout ({self.policy.drain_timeout:g}s) is shorter than the deregistration "
                    f"delay of {self.balancer.name} ({delay:g}s): draining hosts would time out.",
                    field=f"{key}.drain_timeout",
                    fix=f"set drain_timeout to at least {delay:g}, or lower the target group's "
                    "deregistration_delay.timeout_seconds",
                )
        if self.policy.canary is not None:  # its balancer keeps statistics of these hosts
            canary.check_source(self, hosts)

    def run(self, hosts: list[str], plan: Plan | None = None) -> RolloutRun:
        plan = plan or self.policy.plan(hosts)
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
        with waiting.abandon_when(self.now), self._verification(plan.hosts) as self._verify_batch:
            for i, batch in enumerate(plan.batches, 1):
                if self.stop.is_set():
                    self.result.interrupted = True
                    break
                try:
                    self._batch(i, list(batch))
                    if i == 1 and plan.canary:  # baked and judged by the balancer's statistics
                        canary.run(self, i, list(batch), plan.hosts[len(batch) :])
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
                if self.policy.pause and i < len(plan.batches):  # a wait that a stop request ends
                    for h in plan.batches[i]:
                        self.events(i + 1, h, "pause")
                    paused = time.monotonic()
                    self.stop.wait(self.policy.pause)
                    waited = time.monotonic() - paused
                    self.result.stage_seconds["pause"] = self.result.stage_seconds.get("pause", 0.0) + waited
        self.result.seconds = time.monotonic() - started
        self.result.stopped_now = self.now_set()
        return self.result

    def halt(self, reason: str) -> None:
        """Stop after the hosts in flight, draining no other (the state store stopped answering)."""
        self.halting = reason
        self.result.halted = self.result.halted or reason

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.halting is not None

    def now_set(self) -> bool:
        return self.now is not None and self.now.is_set()

    def _verification(self, hosts: list[str]) -> contextlib.AbstractContextManager[BatchVerify | None]:
        """The verify stage's suite for the rollout's hosts, opened for its whole length (None: no suite)."""
        if not self.suite:
            return contextlib.nullcontext(None)
        return self.runners.verification(
            self.project, self.inv, self.suite, hosts, deadlines=self.deadlines, stop_now=self.now
        )

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
        """Hosts a dead run left drained, back into the balancer (rollout.healing.heal)."""
        return healing.heal(self, hosts)

    def _timed(self, stage: str, batch: int, hosts: list[str]) -> StageTimer:
        outcomes = [self.result.hosts[h] for h in hosts]
        return StageTimer(self.result, stage, outcomes, self.record, lambda h: self.events(batch, h.name, stage))

    def _fail_errored(
        self, errors: dict[str, Exception | None], stage: str, live: list[str], *, in_balancer: bool
    ) -> list[str]:
        """Fail the hosts whose stage raised (not those it left `stopping.Untouched`); the hosts still live."""
        for host, exc in errors.items():
            if exc is not None and not isinstance(exc, stopping.Untouched):
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
        """One batch through the stages; each stage gets the hosts still live and returns those that passed."""
        live = self._check_stage(i, self._connect_stage(i, batch))
        if self._stopping():
            return
        healthy_before = self._healthy_now(live) if self.policy.health is not None else {}
        serving_before: dict[str, bool] = {}
        if self.balancer is not None and live:
            live = self._drain_stage(i, live, serving_before)
            if self._stopping():  # nothing applied yet: put them back untouched
                self.put_back(live, "drain")
                return stopping.read_back(self, batch)
        live = self._apply_stage(i, live)
        if self.now_set():
            return stopping.read_back(self, batch)
        live = self._settle_stage(i, live, healthy_before, serving_before)  # reboot, health gate, verify: per host
        live = self._enable_stage(i, live, serving_before)
        stopping.read_back(self, batch)
        for h in live:
            self.result.hosts[h].done()
            self.record(self.result.hosts[h])

    def _connect_stage(self, i: int, batch: list[str]) -> list[str]:
        out = self.result.hosts
        with self._timed("connect", i, batch):
            errors = self.runners.connect(self.project, self.inv, batch, deadlines=self.deadlines)
        for host, error in errors.items():
            if error:  # never drained: the balancer is not touched for it
                out[host].fail("connect", error, in_balancer=True)
                self.record(out[host])
        return [h for h in batch if not errors.get(h)]

    def _check_stage(self, i: int, live: list[str]) -> list[str]:
        """What must hold before a host is drained (StageRunners.check); a host it refuses is left untouched."""
        if self.runners.check is None or not live:
            return live
        with self._timed("check", i, live):
            problems = self.runners.check(live)
        for host in live:
            if problems.get(host):
                self.result.hosts[host].fail("check", str(problems[host]), in_balancer=True)
                self.record(self.result.hosts[host])
        return [h for h in live if not problems.get(h)]

    def _drain_stage(self, i: int, live: list[str], serving_before: dict[str, bool]) -> list[str]:
        """Take the hosts out of the balancer and wait until drained; `serving_before` learns which served."""
        out, bal = self.result.hosts, self.balancer
        assert bal is not None
        with self._timed("drain", i, live):

            def drain(h: str) -> None:
                serving_before[h] = bal.state(self.server(h)).in_service
                out[h].in_balancer = False  # from here on it may be out: a crash must not hide that
                self.record(out[h])
                if self._stopping():  # stopped meanwhile (its store did not answer): it is not taken out
                    out[h].in_balancer = True
                    raise stopping.Untouched(self.halting or "stopping")
                bal.drain(self.server(h))

            drained = self._each(live, drain)
            # the drain command itself failed: the balancer did not take it out, it serves as before
            live = self._fail_errored(drained, "drain", live, in_balancer=True)
            waited = self._wait_all(live, self.policy.drain_timeout, "drained")
        # a wait the operator's stop now ended leaves its host live: drained, unchanged, it is put back
        ended = {h: exc for h, exc in waited.items() if not isinstance(exc, Interrupted)}
        return self._fail_errored(ended, "drain", live, in_balancer=False)

    def _wait_all(self, hosts: list[str], timeout: float, want: str) -> dict[str, Exception | None]:
        """The batch's hosts waited for together (one balancer read per poll); per host its timeout, or None."""
        assert self.balancer is not None
        servers = {h: self.server(h) for h in hosts}
        seen = wait_all(self.balancer, list(servers.values()), timeout, want)
        return {h: s if isinstance(s := seen[servers[h]], Exception) else None for h in hosts}

    def put_back(self, live: list[str], stage: str) -> None:
        """Drained hosts that nothing was changed on, back in the balancer (a stop before their apply, or one
        that came before their first change): on a stop now each is recorded as interrupted at `stage`."""
        out, bal = self.result.hosts, self.balancer
        assert bal is not None
        put_back = self._each(live, lambda h: bal.enable(self.server(h)))
        for h in live:
            if put_back[h] is None:
                out[h].in_balancer = True
                if self.now_set():
                    out[h].interrupt(stage, f"stopped now at {stage}, before any change: put back", in_balancer=True)
            else:
                out[h].fail(stage, f"could not be put back: {put_back[h]}", in_balancer=False)
            self.record(out[h])

    def _apply_stage(self, i: int, live: list[str]) -> list[str]:
        out = self.result.hosts
        if not live:
            return live
        with self._timed("apply", i, live):
            run = self.runners.apply(
                self.project, self.inv, self.deploy, live, deadlines=self.deadlines, stop_now=self.now
            )
        for hr in run.hosts:
            out[hr.name].run = hr
            if hr.failed and not self.now_set():
                bad = hr.failed_operation()
                reason = hr.error or (f"operation {bad.name!r} failed: {bad.error}" if bad else "failed")
                out[hr.name].fail("apply", reason, in_balancer=out[hr.name].in_balancer)
                self.record(out[hr.name])
        if self.now_set():
            stopping.interrupted_in_apply(self, run, live)
        return [h for h in live if out[h].outcome not in ("failed", "interrupted")]

    def _settle_stage(
        self, i: int, live: list[str], healthy_before: dict[str, bool], serving_before: dict[str, bool]
    ) -> list[str]:
        """Reboot (where needed) → health gate → verification, each host on its own (rollout.settle)."""
        on = {"reboot": self.policy.reboot != "never", "health": self.policy.health is not None}
        steps = [step for step, wanted in {**on, "verify": bool(self.suite)}.items() if wanted]
        if not steps or not live:
            return live
        maybe_reboot = self.runners.reboot_if_needed(self.policy.reboot, self.policy.reboot_timeout, self.inv)
        # A host that was not serving before the change, by its gate and by its balancer (the other half of
        # its stack is not deployed yet), is not held to the gate now: the change did not take it out of
        # service. One its balancer had serving is held, so a gate that can never pass stops the rollout.
        held = {h for h in live if h in self.held or healthy_before.get(h, True) or serving_before.get(h, True)}
        self.was_held.update({h: h in held for h in live})
        work = {"reboot": maybe_reboot, "health": lambda h: self._gate(h, held), "verify": self._verify}
        announce = functools.partial(self.events, i)  # (host, step)
        Settle(steps, work, self.result, self.record, announce, in_balancer=self.balancer is None).run(live)
        return [h for h in live if self.result.hosts[h].outcome not in ("failed", "interrupted")]

    def _gate(self, host: str, held: set[str]) -> str | None:
        """A held host's health gate, waited for; a note for a host not held whose gate does not pass."""
        assert self.policy.health is not None
        if host in held:
            self.policy.health.wait(host, self.address(host))
            return None
        ok, seen = self.policy.health.probe(host, self.address(host))
        return None if ok else f"its health gate did not pass before the change and still does not ({seen})"

    def _verify(self, host: str) -> None:
        """The suite on one host that passed its gate: its own request, served beside other hosts' (a thread
        each). Raises what ends the host there: a failing test or none (StepFailed), the operator's stop now."""
        assert self._verify_batch is not None
        vr = self._verify_batch([host], self.deploy)
        failing = [r for r in vr.for_host(host) if r.outcome in ("failed", "error")]
        if vr.interrupted and self.now_set():
            raise Interrupted(vr.interrupted)
        if vr.error or failing or not vr.for_host(host):
            why = vr.error or "; ".join(f"{r.test}: {r.message}" for r in failing) or "no test ran"
            raise StepFailed(f"verify/{self.suite}: {why}")

    def _enable_stage(self, i: int, live: list[str], serving_before: dict[str, bool]) -> list[str]:
        """Back in the balancer, and wait until it serves; a host that cannot serve is taken out again."""
        out, bal = self.result.hosts, self.balancer
        if bal is None or not live:
            return live
        with self._timed("enable", i, live):
            enabled = self._each(live, lambda h: bal.enable(self.server(h)))
            live = self._fail_errored(enabled, "enable", live, in_balancer=False)
            # A host that was not serving before (a new host, or one whose other half of the stack is
            # not deployed yet) is put back in but not held to serving now: the change did not take
            # it out of service, and the balancer's own health check still decides.
            held = [h for h in live if h in self.held or serving_before.get(h, True)]
            waited = self._wait_all(held, self.policy.healthy_timeout, "in_service")
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
        return live

    def _healthy_now(self, hosts: list[str]) -> dict[str, bool]:
        """One probe of the health gate per host, before anything changes."""
        gate = self.policy.health
        assert gate is not None
        seen: dict[str, bool] = {}
        parallel(hosts, lambda h: seen.__setitem__(h, gate.probe(h, self.address(h))[0]))
        return seen

    def _in_service(self, host: str) -> bool:
        assert self.balancer is not None
        try:
            return self.balancer.state(self.server(host)).in_service
        except Exception:  # noqa: BLE001 - only feeds a note
            return False

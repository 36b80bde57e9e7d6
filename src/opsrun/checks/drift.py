"""Drift: what differs, host by host, between the hosts and what the ops repo says, and since when.

Each deploy is dry-run on every host (nothing changes, no balancer is touched), then its verify suite runs.
Every finding is one of:

    will_change   the operation would change the host (with the commands it would run)
    unknown       cannot be known before applying (conditional on an earlier operation, or not idempotent
                  by nature); listed with its reason, never counted as drift, never shown as "no change"
    verify_failed a test of the deploy's suite failed (with its message)
    error         the deploy raised or its suite could not run on that host: drift there is not known
    out_of_balancer  the host's balancer does not serve it (drained, in maintenance, deregistered, unhealthy);
                  deploy "balancer", with who left it so (opsrun.checks.membership). A host held on purpose
                  (`opsrun hold`) is listed as intentional and is not drift until the hold is released.

Unreachable hosts are listed apart. A run is never "clean" unless it saw every host: one that checked no
host, or met an error, is `error` (exit 1); one that missed some hosts is `partial` and is never the clean
baseline that later findings are classified against. A run that missed hosts exits 1 (whatever it found on
the others) unless --allow-unreachable accepts it: then `partial` exits 0 and drift found 3.

Findings are remembered in the state store, keyed by (host, deploy, operation, fingerprint of what would
change): new, persisting (since first_seen) or resolved. A finding is
*intentional* when the ops repo's desired state for that deploy changed since the last clean drift run
(git), otherwise *corrective* (the host changed).
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsrun import engine
from opsrun.errors import ConfigError
from opsrun.model.documents import dump, run_keys
from opsrun.model.documents.checks import DriftDocument, DriftSummary
from opsrun.model.documents.checks import Finding as FindingDocument
from opsrun.model.documents.status import DriftStatus, FindingStatus, TestOutcome, Verdict
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import FAILING, DeployRun, VerifyRun
from opsrun.settings.deadlines import Deadlines
from opsrun.verification import verify

MEMBERSHIP = "balancer"  # the `deploy` of out_of_balancer findings
# What a drift run's document takes from the run under the same names, beside documents.run_keys.
SAME_NAMED = (
    "deploys",
    "interrupted",
    "allow_unreachable",
    "data",
    "resolved",
    "unreachable",
    "trend",
    "notified",
    "notify_errors",
)


@dataclass
class Finding:
    host: str
    deploy: str
    operation: str
    verdict: Verdict
    detail: list[str]  # commands that would run, the reason it is unknown, or the failed test's message
    status: FindingStatus | None = None  # (unknown findings: not tracked)
    first_seen: str | None = None
    cause: str | None = None  # intentional | corrective (documents.status.Cause)
    diff: list[str] = field(default_factory=list)  # files: what each would become ("Will modify PATH", hunks)
    held: bool = False  # out of its balancer on purpose (opsrun hold): listed, tracked, not drift

    @property
    def fingerprint(self) -> str:
        # out of the balancer is one finding however its state or its cause reads from run to run
        parts = [self.operation] if self.verdict == Verdict.OUT_OF_BALANCER else [*self.detail, *self.diff]
        what = "\0".join(parts).encode()
        return hashlib.sha1(what).hexdigest()[:16]  # noqa: S324 - an identity, not security

    @property
    def counts(self) -> bool:
        """Tracked: first seen, resolved. Unknown and error findings are not drift."""
        return self.verdict in (Verdict.WILL_CHANGE, Verdict.VERIFY_FAILED, Verdict.OUT_OF_BALANCER)

    def document(self) -> FindingDocument:
        return FindingDocument.model_validate(self, from_attributes=True)  # every key under its own name


@dataclass
class DriftRun:
    inventory: str
    deploys: list[str]
    hosts: list[str]
    findings: list[Finding] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    run_id: int | None = None
    allow_unreachable: bool = False  # --allow-unreachable: a host that cannot be reached does not fail the run
    trend: list[tuple[str, int]] = field(default_factory=list)  # (when, drift findings) of the last runs, this one last
    notified: list[str] = field(default_factory=list)  # the notifications sent ("pagerduty:ENV: trigger (warning)")
    notify_errors: list[str] = field(default_factory=list)
    interrupted: str | None = None  # SIGINT/SIGTERM: nothing was concluded
    data: dict[str, Any] = field(default_factory=dict)  # --data the run was given

    @property
    def drifted(self) -> list[Finding]:
        return [f for f in self.findings if f.counts and not f.held]

    @property
    def tracked(self) -> list[Finding]:
        """The findings kept in the store (drift, and the hosts held out of their balancer on purpose)."""
        return [f for f in self.findings if f.counts]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == Verdict.ERROR]

    @property
    def checked(self) -> list[str]:
        """The hosts that were actually seen (reached, and no error kept a deploy from being checked)."""
        bad = set(self.unreachable) | {f.host for f in self.errors}
        return [h for h in self.hosts if h not in bad]

    @property
    def status(self) -> DriftStatus:
        if self.interrupted:
            return DriftStatus.INTERRUPTED
        if self.errors or not self.checked:
            return DriftStatus.ERROR
        if self.drifted:
            return DriftStatus.DRIFT
        return DriftStatus.PARTIAL if self.unreachable else DriftStatus.CLEAN

    @property
    def exit_code(self) -> int:
        if self.status == DriftStatus.INTERRUPTED:
            return 130
        if self.notify_errors:
            return 1  # the nightly job must not look fine when nobody was told
        if self.unreachable and not self.allow_unreachable:
            return 1  # nor when it did not see every host
        return {DriftStatus.CLEAN: 0, DriftStatus.PARTIAL: 0, DriftStatus.DRIFT: 3, DriftStatus.ERROR: 1}[self.status]

    def summary(self) -> DriftSummary:
        return DriftSummary(
            hosts=len(self.hosts),
            checked=len(self.checked),
            errors=len(self.errors),
            drift=len(self.drifted),
            new=sum(f.status == FindingStatus.NEW for f in self.drifted),
            persisting=sum(f.status == FindingStatus.PERSISTING for f in self.drifted),
            resolved=len(self.resolved),
            unknown=sum(not f.counts for f in self.findings),
            out_of_balancer=sum(f.verdict == Verdict.OUT_OF_BALANCER for f in self.drifted),
            held=sum(f.held for f in self.findings),
            unreachable=len(self.unreachable),
        )

    def document(self) -> DriftDocument:
        return DriftDocument(
            **run_keys(self, *SAME_NAMED),
            hosts_checked=self.hosts,
            summary=self.summary(),
            findings=[f.document() for f in self.findings],
        )

    def to_dict(self) -> dict[str, Any]:
        return dump(self.document())


def deploys_for(project: Project, inv: Inventory, hosts: list[str]) -> list[str]:
    """The deploys that have settings (`NAME_*` in group_data) for at least one of the hosts."""
    return [
        d
        for d in project.deploys()
        if any(any(k == d or k.startswith(f"{d}_") for k in inv.hosts[h].data) for h in hosts)
    ]


def desired_state_paths(deploy: str) -> list[str]:
    return [f"deploys/{deploy}.py", f"deploys/templates/{deploy}", "deploys/_ops.py", "group_data", "inventories"]


def changed_since(root: Path, revision: str | None, deploy: str) -> bool | None:
    """Did the repo's desired state for `deploy` change since `revision` (committed or not)? None: unknown."""
    if not revision:
        return None
    base = revision.removesuffix("+dirty")
    paths = desired_state_paths(deploy)
    proc = subprocess.run(
        ["git", "-C", str(root), "diff", "--quiet", base, "--", *paths], capture_output=True, check=False
    )
    if proc.returncode not in (0, 1):
        return None
    return proc.returncode == 1


def run_drift(
    project: Project,
    inv: Inventory,
    deploys: list[str],
    hosts: list[str],
    *,
    deadlines: Deadlines | None = None,
    stop: threading.Event | None = None,
    concurrency: int = verify.DEFAULT_CONCURRENCY,
    forks: int | None = None,
) -> DriftRun:
    """Each deploy's dry run and its suite at the same time (both only read), per host within its deadlines;
    at most `forks` hosts dry-run at once (None: all) and `concurrency` verified at once."""
    started = time.monotonic()
    deadlines = deadlines or Deadlines({})
    for d in deploys:
        project.deploy_path(d)
    run = DriftRun(inv.name, deploys, hosts)
    for deploy in deploys:
        if stop is not None and stop.is_set():
            break
        with ThreadPoolExecutor(max_workers=2) as pool:
            planned = pool.submit(
                engine.run_deploy,
                project,
                inv,
                deploy,
                hosts,
                dry_run=True,
                deadlines=deadlines.stage("apply", hosts),
                connect_timeout=deadlines.connect_timeout(hosts),
                stop=stop,
                forks=forks,
            )
            verified = None
            if deploy in project.suites():
                verified = pool.submit(
                    verify.run_suite_within, project, inv, deploy, hosts, deadlines, concurrency=concurrency, stop=stop
                )
            plan, result = planned.result(), verified.result() if verified is not None else None
        if plan.interrupted or (result is not None and result.interrupted):
            run.interrupted = plan.interrupted or (result.interrupted if result else None)
            break
        _read_plan(run, deploy, plan)
        if result is not None:
            _read_verification(run, deploy, result, project.suite_path(deploy))
    run.seconds = time.monotonic() - started
    return run


def _read_plan(run: DriftRun, deploy: str, plan: DeployRun) -> None:
    for h in plan.hosts:
        if not h.reached:
            run.unreachable[h.name] = h.error or "could not connect"
            continue
        if h.error:
            run.findings.append(Finding(h.name, deploy, "(dry run)", Verdict.ERROR, [h.error]))
            continue
        found: dict[str, Finding] = {}
        for op in h.operations:
            if op.unknown:
                run.findings.append(Finding(h.name, deploy, op.name, Verdict.UNKNOWN, [op.unknown]))
            elif op.changed and op.follows in found:  # a consequence (the reload after a config change)
                found[op.follows].detail.append(f"then {op.name}: " + "; ".join(op.commands))
            elif op.changed:
                found[op.name] = Finding(h.name, deploy, op.name, Verdict.WILL_CHANGE, list(op.commands), diff=op.diff)
                run.findings.append(found[op.name])


def _read_verification(run: DriftRun, deploy: str, result: VerifyRun, suite_path: Path) -> None:
    if result.error and not result.results and result.error.startswith("pytest exited"):
        # the suite itself is broken (it does not even collect): the ops repo's fault, on no host
        raise ConfigError(suite_path, f"the suite could not run: {result.error}", fix="correct the suite")
    if result.error:
        for h in run.hosts:
            if h not in run.unreachable:
                run.findings.append(
                    Finding(h, deploy, "(verify)", Verdict.ERROR, [f"the suite could not run: {result.error}"])
                )
        return
    for h in run.hosts:
        if h in run.unreachable:
            continue  # said once, by the dry run
        tests = result.for_host(h)
        if not tests:
            missing = ["no test of the suite ran on this host"]
            run.findings.append(Finding(h, deploy, "(verify)", Verdict.ERROR, missing))
        for t in tests:
            if t.outcome == TestOutcome.ERROR and t.test.startswith("("):  # could not connect, or past its deadline
                run.findings.append(Finding(h, deploy, t.test, Verdict.ERROR, [t.message or t.outcome]))
            elif t.outcome in FAILING:
                run.findings.append(Finding(h, deploy, t.test, Verdict.VERIFY_FAILED, [t.message or t.outcome]))

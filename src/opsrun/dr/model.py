"""The DR test's result model and its judgement: checks (PASS, FAIL, SKIP with evidence), a run's targets,
systems, issues and next test date, and the `dr` settings they are judged against."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsrun.errors import ConfigError
from opsrun.model.documents import dump, run_keys
from opsrun.model.documents.dr import Check as Check  # re-exported: what every check of opsrun.dr builds
from opsrun.model.documents.dr import DRDocument, DRSummary
from opsrun.model.documents.status import CheckStatus, DRStatus
from opsrun.model.inventory import Inventory
from opsrun.settings.dr_models import DRSettings

if TYPE_CHECKING:
    from opsrun.settings import Checked

PASS, FAIL, SKIP, DEGRADED = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.SKIP, CheckStatus.DEGRADED


@dataclass
class DRRun:
    inventory: str
    month: str
    started: str
    who: str
    version: str
    revision: str | None
    targets: dict[str, dict[str, float]]
    checks: list[Check] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # timestamped drill steps
    degraded: list[str] = field(default_factory=list)  # systems a drill could not put back as they were
    trend: list[dict[str, Any]] = field(default_factory=list)  # earlier months, oldest first
    seconds: float = 0.0
    run_id: int | None = None
    hints: dict[str, dict[str, str]] = field(default_factory=dict)  # system -> rto|rpo -> the setting that drills it
    notified: list[str] = field(default_factory=list)  # the notifications sent
    notify_errors: list[str] = field(default_factory=list)  # those that could not be delivered

    def step(self, text: str) -> None:
        self.log.append(f"{dt.datetime.now(dt.UTC).strftime('%H:%M:%S.%f')[:-3]} {text}")

    @property
    def status(self) -> DRStatus:
        """failed (a check, or a measured RTO or RPO over its target), else degraded (a drill could not put a
        system back), else passed."""
        if any(c.status == FAIL for c in self.checks) or any(s["result"] == FAIL for s in self.systems()):
            return DRStatus.FAILED
        return DRStatus.DEGRADED if self.degraded else DRStatus.PASSED

    @property
    def exit_code(self) -> int:
        return 0 if self.status == DRStatus.PASSED and not self.notify_errors else 1

    def measured(self, system: str, what: str) -> float | None:
        """The worst measured RTO or RPO (`what`) of `system`. The backups' RTO is the restore drill's time
        to a restored, counted database; their RPO the newest backup's age."""
        key = "restore_seconds" if (system, what) == ("backups", "rto") else f"{what}_seconds"
        mine = [c for c in self.checks if c.system == system or key == "restore_seconds"]
        return max((c.measured[key] for c in mine if key in c.measured), default=None)

    def note(self, system: str, what: str) -> str | None:
        """Why a system has no measured RTO or RPO (`what`): the setting that would drill it, or its checks."""
        if self.measured(system, what) is not None:
            return None
        hint = self.hints.get(system, {}).get(what)
        return f"not drilled (enable with {hint})" if hint else "not measured (see its checks)"

    def systems(self) -> list[dict[str, Any]]:
        """Per system: targets, the measured RTO and RPO (worst of its checks) or why there is none, result."""
        out = []
        for name, target in self.targets.items():
            mine = [c for c in self.checks if c.system == name]
            rto, rpo = self.measured(name, "rto"), self.measured(name, "rpo")
            ok = all(c.status != FAIL for c in mine)
            ok = ok and (rto is None or rto <= target["rto_minutes"] * 60)
            ok = ok and (rpo is None or rpo <= target["rpo_minutes"] * 60)
            result = FAIL if not ok else (DEGRADED if name in self.degraded else (PASS if mine else SKIP))
            out.append(
                {
                    "system": name,
                    "rto_target_seconds": target["rto_minutes"] * 60,
                    "rpo_target_seconds": target["rpo_minutes"] * 60,
                    "rto_seconds": rto,
                    "rpo_seconds": rpo,
                    "rto_note": self.note(name, "rto"),
                    "rpo_note": self.note(name, "rpo"),
                    "result": result,
                }
            )
        return out

    def issues(self) -> list[dict[str, str]]:
        found = [{"severity": "critical", "issue": f"{s} left degraded by a drill"} for s in self.degraded]
        found += [
            {"severity": c.severity, "issue": f"{c.system}: {c.name}: {c.evidence[0] if c.evidence else 'failed'}"}
            for c in self.checks
            if c.status == FAIL
        ]
        for s in self.systems():
            for what in ("rto", "rpo"):
                got, want = s[f"{what}_seconds"], s[f"{what}_target_seconds"]
                if got is not None and got > want:
                    found.append(
                        {
                            "severity": "high",
                            "issue": f"{s['system']}: measured {what.upper()} {got:.1f}s > {want:.0f}s",
                        }
                    )
        return found

    def next_test(self) -> str:
        start = dt.date.fromisoformat(self.started[:10])
        if self.status != DRStatus.PASSED:
            return (start + dt.timedelta(days=30)).isoformat() + f" (re-test: this one {self.status})"
        year, month = (start.year + start.month // 12, start.month % 12 + 1)
        return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1])).isoformat()

    def document(self) -> DRDocument:
        issues = self.issues()
        first_line = f"DR test {self.month} on {self.inventory}: {self.status.upper()}"
        if self.degraded:
            first_line = f"DEGRADED: {', '.join(self.degraded)} could not be put back after the drill"
        return DRDocument(
            **run_keys(self, "month", "started", "who", "revision", "degraded", "trend", "notified", "notify_errors"),
            opsrun_version=self.version,
            first_line=first_line,
            summary=DRSummary(
                checks=len(self.checks),
                passed=sum(c.status == PASS for c in self.checks),
                failed=sum(c.status == FAIL for c in self.checks),
                skipped=sum(c.status == SKIP for c in self.checks),
                issues=len(issues),
            ),
            systems=self.systems(),
            checks=self.checks,
            drill_log=self.log,
            issues=issues,
            action_items=[f"fix and re-test: {i['issue']}" for i in issues],
            next_test=self.next_test(),
        )

    def to_dict(self) -> dict[str, Any]:
        return dump(self.document())


# ------------------------------------------------------------------------------------------------ settings


def settings(inv: Inventory, hosts: list[str], checked: Checked) -> DRSettings:
    """The `dr` settings of the hosts as settings.check_hosts validated them (the first host's)."""
    dr = checked[hosts[0]].dr if hosts else None
    if dr is None:
        raise ConfigError(
            inv.path,
            "no `dr` settings for these hosts.",
            field="dr",
            fix='add dr = {"backups": [...], "postgres": {...}, "redis": True} to group_data/all.py',
        )
    return dr


def targets(dr: DRSettings, systems: list[str]) -> dict[str, dict[str, float]]:
    """Per system: `dr.targets` (its schema's defaults: 15 and 5 minutes) under what `dr.systems.NAME` sets.
    The backups' RPO is the age of the newest backup: its target is the largest `max_age_hours`, unless
    dr.systems sets one."""
    base = dr.targets.model_dump()
    own: dict[str, dict[str, float]] = {s: t.model_dump(exclude_unset=True) for s, t in dr.systems.items()}
    out = {s: {**base, **own.get(s, {})} for s in systems}  # a system's own targets: only those it sets
    if "backups" in out and "rpo_minutes" not in own.get("backups", {}):
        out["backups"]["rpo_minutes"] = max((b.max_age_hours for b in dr.backups), default=26.0) * 60
    return out


def not_drilled(dr: DRSettings, drill: bool) -> dict[str, dict[str, str]]:
    """Per system, the settings that would measure its RTO or RPO when these do not: what a report says in
    place of a number ("not drilled (enable with ...)")."""
    pg = dr.postgres
    env = pg.secret_env if pg is not None else {}
    with_drill = "" if drill else "dr-test --drill"
    failover = pg is not None and (pg.failover is not None or pg.rds_failover is not None)
    hints: dict[str, dict[str, str]] = {"backups": {}, "postgres": {}, "redis": {}, "mongo": {}}
    if not (pg is not None and pg.dumps and env.get("scratch")):
        hints["backups"]["rto"] = "dr.postgres.dumps and dr.postgres.secret_env.scratch (the restore drill)"
    if not failover:
        hints["postgres"]["rto"] = "dr.postgres.failover or dr.postgres.rds_failover, and dr-test --drill"
    elif with_drill:
        hints["postgres"]["rto"] = with_drill
    if not env.get("replica") and not (failover and drill):
        hints["postgres"]["rpo"] = "dr.postgres.secret_env.replica (the RPO probe)"
    for system in ("redis", "mongo"):
        if with_drill:
            hints[system]["rto"] = with_drill
    return {system: found for system, found in hints.items() if found}


def month_of(value: str | None) -> str:
    if value is None:
        return dt.date.today().strftime("%Y-%m")
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m")
    except ValueError:
        parsed = None
    if parsed is None or parsed.strftime("%Y-%m") != value:
        raise ConfigError(
            "the command line",
            f"{value!r} is not a month.",
            field="--month",
            fix="write YYYY-MM with a month from 01 to 12, e.g. 2026-11",
        )
    return value


def systems_of(dr: DRSettings) -> list[str]:
    """The systems the settings name: backups listed, postgres set, redis and mongo True."""
    return [s for s in ("backups", "postgres", "redis", "mongo") if getattr(dr, s)]


def guarded(system: str, name: str, fn: Callable[[], list[Check]]) -> list[Check]:
    """The checks `fn` gathers; a system that cannot be reached is one FAIL with the error as its evidence,
    not a crash of the report. A ConfigError is the settings' fault, and stops the test."""
    try:
        return fn()
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is evidence in the report
        return [Check(system, name, FAIL, [f"{type(exc).__name__}: {exc}"])]


def one(system: str, name: str, fn: Callable[[], Check]) -> Check:
    """One check, guarded the same way: an error reaching its system is that check's FAIL."""
    return guarded(system, name, lambda: [fn()])[0]

"""The DR report's judgement, on checks as the real ones produce them (tests/dr and tests/lab run them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun.dr import FAIL, PASS, Check, DRRun, month_of, systems_of, targets
from opsrun.errors import ConfigError
from opsrun.settings.models import DRSettings


def run(checks: list[Check], started: str = "2026-11-23T05:00:00Z", degraded=()) -> DRRun:
    dr = DRRun(
        "lab",
        "2026-11",
        started,
        "ops",
        "0.1.0",
        "abc",
        targets(DRSettings.model_validate({"systems": {"redis": {"rto_minutes": 1}}}), ["redis", "postgres"]),
    )
    dr.checks, dr.degraded = checks, list(degraded)
    return dr


def test_measured_values_are_judged_against_each_systems_targets():
    dr = run(
        [
            Check("redis", "failover drill", PASS, measured={"rto_seconds": 75.0}),
            Check("postgres", "RPO probe", PASS, measured={"rpo_seconds": 0.4}),
        ]
    )
    systems = {s["system"]: s for s in dr.systems()}
    assert (systems["redis"]["rto_target_seconds"], systems["redis"]["result"]) == (60, FAIL)
    assert (systems["postgres"]["rpo_target_seconds"], systems["postgres"]["result"]) == (300, PASS)
    assert dr.issues() == [{"severity": "high", "issue": "redis: measured RTO 75.0s > 60s"}]


def test_a_failure_asks_for_a_retest_within_30_days_and_degraded_comes_first():
    dr = run([Check("postgres", "restore drill", FAIL, ["row counts differ after restore: users"])], degraded=["redis"])
    doc = dr.to_dict()
    assert doc["status"] == "failed" and doc["first_line"].startswith("DEGRADED: redis")
    assert doc["next_test"] == "2026-12-23 (re-test: this one failed)"
    assert doc["issues"][0] == {"severity": "critical", "issue": "redis left degraded by a drill"}
    assert "fix and re-test: postgres: restore drill: row counts differ after restore: users" in doc["action_items"]


def test_a_pass_is_next_tested_a_month_on_clamped_to_the_month_end():
    assert run([], started="2026-01-31T05:00:00Z").next_test() == "2026-02-28"
    assert run([], started="2026-12-15T05:00:00Z").next_test() == "2027-01-15"


def test_month_must_be_yyyy_mm():
    assert month_of("2026-10") == "2026-10"
    with pytest.raises(ConfigError) as err:
        month_of("October")
    assert err.value.field == "--month"


# ------------------------------------------------------------------------------------------- restore drill


class _Conn:
    def __enter__(self) -> _Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://opsrun:drill-pw-1234@127.0.0.1:5432/postgres",
        "postgresql://opsrun@127.0.0.1:5432/postgres?password=drill-pw-1234",
        "host=127.0.0.1 user=opsrun password='drill-pw-1234' dbname=postgres",
    ],
    ids=["userinfo", "query", "conninfo"],  # not the URL: pytest puts the test's id in PYTEST_CURRENT_TEST
)
def test_the_restore_drill_gives_pg_restore_its_password_in_a_600_file_not_in_argv(url, tmp_path, monkeypatch):
    """On main the password was in pg_restore's -d conninfo: any user on the machine saw it in `ps`."""
    import os
    import stat
    import subprocess

    from opsrun.dr import drills

    (tmp_path / "db.dump").write_bytes(b"dump")
    seen: dict[str, object] = {}

    def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        env = dict(kwargs.get("env") or os.environ)  # type: ignore[call-overload]
        passfile = dict(p.split("=", 1) for p in argv[argv.index("-d") + 1].split() if "=" in p).get("passfile")
        seen.update(argv=list(argv), env_values=list(env.values()), passfile=passfile)
        assert passfile, argv
        seen["mode"] = stat.S_IMODE(os.stat(passfile).st_mode)
        seen["content"] = Path(passfile).read_text()
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(drills.subprocess, "run", fake_run)
    monkeypatch.setattr(drills, "connect", lambda _url: _Conn())
    monkeypatch.setattr(drills, "counts", lambda _url, tables: dict.fromkeys(tables, 1))
    check = drills.restore_drill(str(tmp_path / "*.dump"), url, url, ["users"], run([]))
    assert check.status == PASS, check
    assert not [a for a in seen["argv"] if "drill-pw-1234" in a], seen["argv"]  # type: ignore[attr-defined]
    assert not [v for v in seen["env_values"] if "drill-pw-1234" in v]  # type: ignore[attr-defined]
    assert seen["mode"] == 0o600 and seen["content"] == "*:*:*:*:drill-pw-1234\n"
    assert not os.path.exists(str(seen["passfile"])), "the passfile was left behind"


def test_the_lab_replica_is_made_with_the_password_in_the_environment_not_in_argv(tmp_path, monkeypatch):
    """On main `env PGPASSWORD=...` was part of pg_basebackup's command line."""
    import subprocess

    from opsrun.lab import postgres

    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append((list(argv), dict(kwargs.get("env") or {})))  # type: ignore[call-overload]
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(postgres.subprocess, "run", fake_run)
    monkeypatch.setattr(postgres, "bindir", lambda: tmp_path)
    primary = postgres.Server("opsrun", "lab-pw-5678", "demo", 5432)
    postgres.basebackup(primary, tmp_path / "replica")
    [(argv, env)] = calls
    assert "pg_basebackup" in argv[4] and not [a for a in argv if "lab-pw-5678" in a], argv
    assert env.get("PGPASSWORD") == "lab-pw-5678"


# ------------------------------------------------------------------------------- every tier's RTO and RPO


def test_every_tier_has_a_measured_rto_and_rpo_or_the_setting_that_drills_it():
    """On main PostgreSQL's RTO and the backups' RTO were "-": no drill, and nothing said which one."""
    from opsrun.dr.model import not_drilled
    from opsrun.reports.model import from_document

    dr = {
        "backups": [{"name": "dumps", "files": "/b/*.dump", "max_age_hours": 26}],
        "postgres": {"secret_env": {"primary": "P", "replica": "R"}},
        "redis": True,
        "mongo": True,
    }
    checks = [
        Check("backups", "dumps", PASS, measured={"age_hours": 5.0, "rpo_seconds": 18000.0}),
        Check("postgres", "RPO probe", PASS, measured={"rpo_seconds": 0.02}),
        Check("redis", "RPO probe", PASS, measured={"rpo_seconds": 0.01}),
        Check("mongo", "replica set health", FAIL, ["no primary"]),
    ]
    dr = DRSettings.model_validate(dr)  # as settings.check_hosts gives it
    run = DRRun("lab", "2026-12", "2026-12-02T03:00:00Z", "ops", "0", None, targets(dr, systems_of(dr)))
    run.checks, run.hints = checks, not_drilled(dr, drill=False)
    systems = {s["system"]: s for s in run.to_dict()["systems"]}
    assert systems["backups"]["rto_note"] == (
        "not drilled (enable with dr.postgres.dumps and dr.postgres.secret_env.scratch (the restore drill))"
    )
    assert (systems["backups"]["rpo_seconds"], systems["backups"]["rpo_target_seconds"]) == (18000.0, 26 * 3600)
    assert systems["postgres"]["rto_note"] == (
        "not drilled (enable with dr.postgres.failover or dr.postgres.rds_failover, and dr-test --drill)"
    )
    assert systems["redis"]["rto_note"] == "not drilled (enable with dr-test --drill)"
    assert systems["mongo"]["rpo_note"] == "not measured (see its checks)"
    measured = [s[f"{w}_note"] for s in systems.values() for w in ("rto", "rpo") if s[f"{w}_seconds"] is not None]
    assert measured and all(note is None for note in measured)
    [table] = [rows for title, _h, rows in from_document(run.to_dict()).tables if title.startswith("RTO and RPO")]
    assert not [row for row in table if "-" in row], table  # never a dash in place of a number


def test_the_backups_rto_is_the_restore_drills_time_and_their_rpo_the_newest_backups_age():
    from opsrun.dr.model import not_drilled

    dr = {
        "backups": [{"files": "/b/*.dump", "max_age_hours": 26}, {"s3": "s3://backups/pg/", "max_age_hours": 30}],
        "postgres": {"secret_env": {"primary": "P", "replica": "R", "scratch": "P"}, "dumps": "/b/*.dump"},
    }
    dr = DRSettings.model_validate(dr)  # as settings.check_hosts gives it
    run = DRRun("lab", "2026-12", "2026-12-02T03:00:00Z", "ops", "0", None, targets(dr, systems_of(dr)))
    run.hints = not_drilled(dr, drill=True)
    run.checks = [
        Check("backups", "files", PASS, measured={"rpo_seconds": 3600.0}),
        Check("backups", "s3", PASS, measured={"rpo_seconds": 7200.0}),
        Check("postgres", "restore drill", PASS, measured={"restore_seconds": 12.5}),
        Check("postgres", "failover drill", PASS, measured={"rto_seconds": 1.5, "rpo_seconds": 0.0}),
    ]
    systems = {s["system"]: s for s in run.systems()}
    assert (systems["backups"]["rto_seconds"], systems["backups"]["rpo_seconds"]) == (12.5, 7200.0)
    assert systems["backups"]["rpo_target_seconds"] == 30 * 3600  # the largest max_age_hours
    assert (systems["postgres"]["rto_seconds"], systems["postgres"]["rto_note"]) == (1.5, None)
    assert run.status == "passed"


def test_a_degraded_system_is_its_own_status_and_an_rto_over_target_fails_the_run():
    run_ = run([Check("redis", "failover drill", PASS, measured={"rto_seconds": 1.0})], degraded=["redis"])
    assert (run_.status, run_.exit_code) == ("degraded", 1)
    assert {s["system"]: s["result"] for s in run_.systems()}["redis"] == "DEGRADED"
    assert run_.next_test().endswith("(re-test: this one degraded)")
    slow = run([Check("redis", "failover drill", PASS, measured={"rto_seconds": 75.0})])
    assert slow.status == "failed"  # on main: "passed", with the RTO over its target among the issues

"""The DR report's judgement, on checks as the real ones produce them (tests/dr and tests/lab run them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun.dr import FAIL, PASS, Check, DRRun, month_of, targets
from opsrun.errors import ConfigError


def run(checks: list[Check], started: str = "2026-11-23T05:00:00Z", degraded=()) -> DRRun:
    dr = DRRun(
        "lab",
        "2026-11",
        started,
        "ops",
        "0.1.0",
        "abc",
        targets({"systems": {"redis": {"rto_minutes": 1}}}, ["redis", "postgres"]),
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

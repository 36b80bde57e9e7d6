"""PagerDuty through the real CLI, against a real HTTP server on loopback that speaks the Events API v2
(tests/events_api.py: 202 with the dedup key; 429 with Retry-After; 500), with the state store on SQLite and
on a real PostgreSQL server.

Shows: a nightly drift that finds drift triggers once, a second identical night sends nothing, a clean
night resolves; a run that fails triggers with severity error; a DR test that fails triggers with its
severity and resolves when it passes; a delivery retried after a 429 or a 500 lands once; one that never
lands is reported, kept beside the result and exits 1; a missing routing-key variable exits 2 before any
host is touched; the key is in no output, result, report, store or file under .opsrun.

`opsrun dr-test` and the failed drift run are real subprocesses that touch nothing but loopback. The drift
nights that find drift or none need hosts: there `opsrun.checks.drift.run_drift` (the dry runs and suites on the
hosts) is replaced by the night's findings and everything else is real (tests/lab/test_pagerduty.py runs
the same nights on the lab's hosts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from opsrun.checks import drift as drift_module
from opsrun.checks.drift import DriftRun, Finding
from opsrun.cli import cli
from tests.conftest import _free_port, copy_ops, opsrun

ROUTING_ENV = "PD_NIGHTLY_ROUTING"  # a name redaction would not guess: the key is masked because opsrun read it
NOTIFY = f'notify = {{"pagerduty": {{"secret_env": {{"routing_key": "{ROUTING_ENV}"}}}}}}\n'
CONFIG_OP = "nginx configuration (validated with nginx -t)"


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request) -> list[str]:
    """The --state option: none (SQLite in .opsrun), or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return []
    server = request.getfixturevalue("postgres_url")
    name = f"pd_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return ["--state", server.rsplit("/", 1)[0] + f"/{name}"]


@pytest.fixture
def key(pagerduty, monkeypatch) -> str:
    """The routing key, in the variable group_data `notify` names (and not in the default one)."""
    monkeypatch.setenv(ROUTING_ENV, pagerduty.routing_key)
    monkeypatch.delenv("OPSRUN_PAGERDUTY_ROUTING_KEY")
    return pagerduty.routing_key


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    """An ops repository whose inventory `nightly` has two hosts on a loopback port where nothing listens,
    and whose group_data pages through PagerDuty (what the nightly units use)."""
    ops = copy_ops(tmp_path / "ops")
    port = _free_port()
    (ops / "inventories" / "nightly.py").write_text(
        f'night = (["web1", "web2"], {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}})\n'
    )
    (ops / "group_data" / "all.py").write_text(NOTIFY)
    return ops


def nights(monkeypatch, *findings: list[str]) -> None:
    """Each drift run in turn finds drift on the hosts listed (none: clean): run_drift stands in for the hosts."""
    queue = list(findings)

    def run_drift(project, inv, deploys, hosts, **_kwargs) -> DriftRun:
        run = DriftRun(inv.name, deploys, hosts, seconds=0.1)
        for host in queue.pop(0):
            upload = [f"upload /etc/nginx/nginx.conf on {host}"]
            run.findings.append(Finding(host, "nginx", CONFIG_OP, "will_change", upload, diff=["Will modify x"]))
        return run

    monkeypatch.setattr(drift_module, "run_drift", run_drift)


def drift(ops: Path, state: list[str], out: Path, *args: str):
    result = CliRunner().invoke(
        cli, ["--project", str(ops), *state, "drift", "nightly", "nginx", "--out", str(out), "--format", "json", *args]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_drift_triggers_once_sends_nothing_the_same_night_and_resolves_when_clean(
    ops, state, key, pagerduty, monkeypatch, tmp_path
):
    nights(monkeypatch, ["web2"], ["web2"], [])
    out = tmp_path / "reports"

    first = drift(ops, state, out)
    assert first.exit_code == 3, first.output + first.stderr
    [trigger] = pagerduty.accepted
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", "opsrun drift nightly nginx")
    payload = trigger["payload"]
    assert payload["severity"] == "warning" and payload["source"] == "nightly"
    assert payload["summary"] == f"Drift on nightly: 1 finding(s), 1 new: web2 nginx: {CONFIG_OP} (will_change, new)"
    doc = json.loads(first.stdout)
    details = payload["custom_details"]
    assert details["run_id"] == doc["run_id"] and details["report"] == str(out.resolve() / "drift-nightly.html")
    assert Path(details["result"]).parent == ops.resolve() / ".opsrun" / "results"
    assert Path(details["result"]).is_file()  # the result is where the alert says
    assert (out / "drift-nightly.html").is_file()  # and so is the report
    assert doc["notified"] == [f"pagerduty:{ROUTING_ENV}: trigger (warning)"] and doc["notify_errors"] == []
    assert f"notified: pagerduty:{ROUTING_ENV}: trigger (warning)" in first.stderr

    second = drift(ops, state, out)  # the same drift the next night
    assert second.exit_code == 3 and len(pagerduty.received) == 1
    assert json.loads(second.stdout)["notified"] == [] and "notified" not in second.stderr

    clean = drift(ops, state, out)
    assert clean.exit_code == 0, clean.output + clean.stderr
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert pagerduty.accepted[1] == {
        "routing_key": key,
        "event_action": "resolve",
        "dedup_key": "opsrun drift nightly nginx",
    }
    assert pagerduty.alerts == {"opsrun drift nightly nginx": "resolved"}


def test_a_retried_delivery_lands_once(ops, state, key, pagerduty, monkeypatch, tmp_path):
    nights(monkeypatch, ["web1"], ["web1", "web2"])
    pagerduty.script = [(429, {"Retry-After": "1"})]
    first = drift(ops, state, tmp_path / "out")
    assert first.exit_code == 3, first.output + first.stderr
    assert len(pagerduty.received) == 2 and len(pagerduty.accepted) == 1
    assert pagerduty.received[0] == pagerduty.received[1]  # the same event, sent again after Retry-After
    assert json.loads(first.stdout)["notified"] == [f"pagerduty:{ROUTING_ENV}: trigger (warning) after 2 attempts"]

    pagerduty.script = [(500, {})]  # the next night finds more: a 500, then the update lands once
    more = drift(ops, state, tmp_path / "out")
    assert more.exit_code == 3, more.output + more.stderr
    assert len(pagerduty.received) == 4 and len(pagerduty.accepted) == 2
    assert pagerduty.accepted[1]["dedup_key"] == pagerduty.accepted[0]["dedup_key"]  # the same alert, updated
    assert pagerduty.accepted[1]["payload"]["summary"].startswith("Drift on nightly: 2 finding(s), 1 new")


def test_an_event_that_never_lands_is_reported_kept_and_sent_the_next_night(ops, key, pagerduty, monkeypatch, tmp_path):
    nights(monkeypatch, ["web1"], ["web1"])
    pagerduty.script = [(429, {"Retry-After": "0"})] * 5  # every attempt throttled
    failed = drift(ops, [], tmp_path / "out")
    assert failed.exit_code == 1, failed.output + failed.stderr  # the job must not look fine: nobody was told
    doc = json.loads(failed.stdout)
    assert doc["notified"] == [] and len(pagerduty.received) == 5 and pagerduty.accepted == []
    [error] = doc["notify_errors"]
    [kept] = (ops / ".opsrun" / "results").glob("*.undelivered.json")
    assert error.startswith(f"notify pagerduty:{ROUTING_ENV}: trigger (warning): HTTP 429")
    assert error.endswith(f"(gave up after 5 attempts); the message is kept in {kept}")
    assert "***" in error and key not in failed.stderr  # the server echoed the key: masked
    [message] = json.loads(kept.read_text())["undelivered"]
    assert message["attempts"] == 5 and message["message"]["event_action"] == "trigger"
    assert "routing_key" not in message["message"]
    assert (kept.parent / kept.name.replace(".undelivered.json", ".json")).is_file()  # beside the run's result
    assert f"error: notify pagerduty:{ROUTING_ENV}" in failed.stderr

    again = drift(ops, [], tmp_path / "out")  # nothing changed, but nothing was delivered: sent now
    assert again.exit_code == 3 and [e["event_action"] for e in pagerduty.accepted] == ["trigger"]


def test_a_drift_run_that_fails_triggers_with_severity_error(ops, state, key, pagerduty):
    """The real drift run, as a subprocess: no host answers, so the run could not see (exit 1)."""
    first = opsrun(*state, "drift", "nightly", "nginx", "--format", "json", project=ops, timeout=300)
    assert first.returncode == 1, first.stderr
    [trigger] = pagerduty.accepted
    assert trigger["payload"]["severity"] == "error" and trigger["payload"]["class"] == "error"
    assert trigger["payload"]["summary"].startswith("Drift run on nightly failed: 0 error(s), 2 unreachable")
    again = opsrun(*state, "drift", "nightly", "nginx", "--format", "json", project=ops, timeout=300)
    assert again.returncode == 1 and len(pagerduty.received) == 1  # still failing the same way: nothing sent


# ------------------------------------------------------------------------------------------------ dr-test


@pytest.fixture
def dr_ops(ops: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The ops repository with a DR test of one backup: the newest dump file under `dumps`."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "nightly.dump").write_text("dump")
    backups = [{"name": "pg_dump files", "files": f"{dumps}/*.dump", "max_age_hours": 26}]
    (ops / "group_data" / "all.py").write_text(NOTIFY + f"dr = {json.dumps({'backups': backups})}\n")
    return ops, dumps


def age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_a_dr_failure_triggers_with_its_severity_and_resolves_when_it_passes(dr_ops, state, key, pagerduty, tmp_path):
    ops, dumps = dr_ops
    out = tmp_path / "dr-reports"
    age(dumps / "nightly.dump", 72)
    failed = opsrun(*state, "dr-test", "nightly", "--month", "2026-11", "--out", str(out), project=ops)
    assert failed.returncode == 1, failed.stderr
    [trigger] = pagerduty.accepted
    assert trigger["dedup_key"] == "opsrun dr-test nightly"
    payload = trigger["payload"]
    assert payload["severity"] == "error"  # the severity (high) as PagerDuty's
    # the stale dump is two issues: its own check, and the backups tier's RPO (the newest backup's age) over target
    assert payload["summary"].startswith("DR test 2026-11 on nightly: FAILED, 2 issue(s): backups: pg_dump files:")
    assert payload["custom_details"]["report"] == str(out.resolve() / "dr-test-nightly-2026-11.html")
    assert f"notified: pagerduty:{ROUTING_ENV}: trigger (error)" in failed.stderr

    again = opsrun(*state, "dr-test", "nightly", "--month", "2026-11", project=ops)
    assert again.returncode == 1 and len(pagerduty.received) == 1

    age(dumps / "nightly.dump", 1)
    passed = opsrun(*state, "dr-test", "nightly", "--month", "2026-11", project=ops)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert pagerduty.alerts == {"opsrun dr-test nightly": "resolved"}


def test_the_routing_key_is_in_no_output_result_report_or_store(dr_ops, state, key, pagerduty, monkeypatch, tmp_path):
    ops, dumps = dr_ops
    out = tmp_path / "dr-reports"
    age(dumps / "nightly.dump", 72)
    (ops / "group_data" / "all.py").write_text(f"dr = {{'backups': [{{'files': '{dumps}/*.dump'}}]}}\n")
    monkeypatch.setenv("PD_OTHER_ROUTING", key)
    pagerduty.script = [(429, {"Retry-After": "0"})] * 5 + [(500, {})]  # undelivered, then a retry lands
    runs = [
        opsrun(*state, "dr-test", "nightly", "--out", str(out), "--notify", "pagerduty:PD_OTHER_ROUTING", project=ops)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [1, 1] and len(pagerduty.accepted) == 1
    assert "the message is kept in" in runs[0].stderr
    assert "trigger (error) after 2 attempts" in runs[1].stderr
    texts = [r.stdout + r.stderr for r in runs]
    texts += [p.read_bytes().decode("latin-1") for p in [*out.rglob("*"), *(ops / ".opsrun").rglob("*")] if p.is_file()]
    texts += stored(ops, state)
    assert len(texts) > 6 and not [t[:200] for t in texts if key in t]


def stored(ops: Path, state: list[str]) -> list[str]:
    """Every row of the store's runs and alerts, as text."""
    query = ["SELECT * FROM runs", "SELECT * FROM alerts"]
    if state:
        with psycopg.connect(state[1]) as conn:
            return [repr(row) for q in query for row in conn.execute(q).fetchall()]
    with sqlite3.connect(ops / ".opsrun" / "state.db") as conn:
        return [repr(row) for q in query for row in conn.execute(q).fetchall()]


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("how", ["option", "group_data"])
@pytest.mark.parametrize("command", ["drift", "dr-test"])
def test_a_missing_routing_key_variable_exits_2_before_any_host_is_touched(dr_ops, no_ssh, monkeypatch, how, command):
    ops, _dumps = dr_ops
    port, seen = no_ssh
    host = f'["web1"], {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}}'
    (ops / "inventories" / "nightly.py").write_text(f"night = ({host})\n")
    monkeypatch.delenv(ROUTING_ENV, raising=False)
    monkeypatch.delenv("OPSRUN_PAGERDUTY_ROUTING_KEY", raising=False)
    if how == "option":
        all_py = ops / "group_data" / "all.py"
        all_py.write_text(all_py.read_text().replace(NOTIFY, ""))
    args = ["--notify", "pagerduty"] if how == "option" else []
    proc = opsrun(command, "nightly", *(["nginx"] if command == "drift" else []), *args, project=ops)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert seen == [] and not (ops / ".opsrun" / "results").exists()
    if how == "option":
        variable = "the environment variable OPSRUN_PAGERDUTY_ROUTING_KEY (the PagerDuty routing key) is not set"
        assert proc.stderr.startswith(f"error: the command line: --notify: {variable}")
    else:
        assert proc.stderr.startswith(
            f"error: {ops / 'group_data' / 'all.py'}: notify.pagerduty.secret_env.routing_key: "
            f"the environment variable {ROUTING_ENV} (the PagerDuty routing key) is not set; nothing was touched."
        )

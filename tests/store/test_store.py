"""Run history and locks on both stores: SQLite (a file) and a real PostgreSQL server."""

from __future__ import annotations

import os
import sqlite3
import uuid

import psycopg
import pytest

from opsrun.errors import ConfigError, LockHeld
from opsrun.store import open_store

DOC = {
    "status": "failed",
    "plan": {"batches": [["web1"], ["web2"]]},
    "hosts": {
        "web1": {"outcome": "done", "batch": 1, "stage": None, "in_balancer": True, "seconds": {"apply": 1.5}},
        "web2": {"outcome": "failed", "batch": 2, "stage": "apply", "reason": "boom", "in_balancer": False},
    },
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request, tmp_path):
    """Stores on one fresh database: a SQLite file, or a new database on the session's PostgreSQL server."""
    stores = []
    url = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_url")
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        url = server.rsplit("/", 1)[0] + f"/{name}"

    def make():
        stores.append(open_store(tmp_path / ".opsrun", url))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def test_a_run_is_recorded_with_who_revision_plan_and_outcomes(store_factory):
    store = store_factory()
    run_id = store.start_run("apply", "lab", "webapp", revision="abc123", plan=DOC["plan"])
    [row] = store.runs("lab")
    assert (row.id, row.status, row.deploy, row.revision, row.finished_at) == (
        run_id,
        "running",
        "webapp",
        "abc123",
        None,
    )
    store.finish_run(run_id, DOC)
    [row] = store.runs()
    assert row.status == "failed" and row.finished_at and row.who and row.machine
    shown = store.run(run_id)
    assert shown["hosts"]["web2"]["reason"] == "boom" and shown["run_id"] == run_id
    assert store.runs("other") == []


def test_history_lists_newest_first(store_factory):
    store = store_factory()
    ids = [store.start_run("apply", "lab", d, revision=None) for d in ("a", "b", "c")]
    assert [r.id for r in store.runs()] == ids[::-1]


def test_unknown_run_is_a_config_error(store_factory):
    with pytest.raises(ConfigError, match="no run 4242"):
        store_factory().run(4242)


def test_second_lock_on_an_inventory_is_refused_naming_the_holder(store_factory):
    first, second = store_factory(), store_factory()
    with first.lock("production", run_id=7):
        with pytest.raises(LockHeld) as err:
            with second.lock("production"):
                pass
        assert f"pid {os.getpid()}" in str(err.value) and "(run 7)" in str(err.value)
        assert "nothing was touched" in str(err.value) and err.value.exit_code == 2
        with second.lock("staging"):  # another inventory is free
            pass
    with second.lock("production"):  # released
        pass


def test_stale_sqlite_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = open_store(tmp_path)
    raw = sqlite3.connect(tmp_path / "state.db")
    raw.execute("INSERT INTO locks VALUES ('lab', 3, 'ci', ?, 999999999, '2026-01-01T00:00:00Z')", (store.machine,))
    raw.commit()
    raw.close()
    with store.lock("lab"):
        assert store._holder("lab")[2] == os.getpid()
    store.close()


def test_postgres_url_errors_never_show_the_password(tmp_path):
    with pytest.raises(ConfigError) as err:
        open_store(tmp_path, "postgresql://opsrun:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(err.value)


class F:
    """The fields of drift.Finding the store reads and writes."""

    def __init__(self, host, operation, fingerprint="f1", deploy="nginx"):
        self.host, self.deploy, self.operation, self.fingerprint = host, deploy, operation, fingerprint
        self.verdict, self.detail = "will_change", ["upload /etc/x"]
        self.status = self.first_seen = self.cause = None


def test_findings_are_new_then_persisting_then_resolved(store_factory):
    store = store_factory()
    checked = {("web1", "nginx"), ("web2", "nginx")}
    first = [F("web1", "config"), F("web2", "config")]
    assert store.track_findings("lab", first, checked=checked, cause=lambda d: "corrective") == []
    assert [(f.status, f.cause) for f in first] == [("new", "corrective")] * 2

    second = [F("web1", "config")]
    resolved = store.track_findings("lab", second, checked=checked, cause=lambda d: "intentional")
    assert (second[0].status, second[0].first_seen, second[0].cause) == (
        "persisting",
        first[0].first_seen,
        "corrective",
    )
    assert [(r["host"], r["operation"]) for r in resolved] == [("web2", "config")]

    changed = [F("web1", "config", fingerprint="f2")]  # what would change is different: a new finding
    resolved = store.track_findings("lab", changed, checked=checked, cause=lambda d: "corrective")
    assert changed[0].status == "new" and [r["host"] for r in resolved] == ["web1"]


def test_findings_of_hosts_not_checked_stay_open(store_factory):
    store = store_factory()
    store.track_findings("lab", [F("web3", "config")], checked={("web3", "nginx")}, cause=lambda d: None)
    assert store.track_findings("lab", [], checked={("web1", "nginx")}, cause=lambda d: None) == []  # web3 unreachable
    again = [F("web3", "config")]
    store.track_findings("lab", again, checked={("web3", "nginx")}, cause=lambda d: None)
    assert again[0].status == "persisting"


def test_last_clean_revision_is_that_of_the_newest_clean_drift_run(store_factory):
    store = store_factory()
    for revision, status in (("r1", "clean"), ("r2", "drift"), ("r3", "clean"), ("r4", "drift")):
        run_id = store.start_run("drift", "lab", "nginx", revision=revision)
        store.finish_run(run_id, {"status": status, "hosts": {}})
    assert store.last_clean_revision("lab") == "r3"
    assert store.last_clean_revision("other") is None


def test_a_dead_run_is_found_marked_interrupted_and_says_where_it_left_each_host(store_factory):
    store = store_factory()
    dead = store.start_run("apply", "lab", "app", revision=None, plan=DOC["plan"])
    store.record_host(dead, {"name": "web1", "batch": 1, "outcome": "done", "stage": None, "in_balancer": True})
    store.record_host(
        dead, {"name": "web2", "batch": 2, "outcome": "not_reached", "stage": "drain", "in_balancer": True}
    )
    store.record_host(
        dead, {"name": "web2", "batch": 2, "outcome": "not_reached", "stage": "apply", "in_balancer": False}
    )
    other = store.start_run("apply", "prod", "app", revision=None)
    assert sorted(store.live_runs()) == [dead, other]

    found = store.interrupt_dead_runs("lab", found_by="app on lab")
    assert [(d["run_id"], d["hosts"]["web2"]["stage"], d["hosts"]["web2"]["in_balancer"]) for d in found] == [
        (dead, "apply", False)
    ]
    assert store.live_runs() == [other], "a run of another inventory is not judged"
    shown = store.run(dead)
    assert shown["status"] == "interrupted" and shown["left_out_of_balancer"] == ["web2"]
    assert "ended without finishing this run (found by app on lab)" in shown["error"]
    assert store.interrupt_dead_runs("lab", found_by="again") == []


def test_history_shows_a_run_whose_process_is_gone_as_interrupted(tmp_path):
    store = open_store(tmp_path)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    store._exec("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
    store._commit()
    assert [r.status for r in store.runs("lab")] == ["interrupted"]
    store.close()


def test_the_store_has_one_identity_for_every_connection(store_factory):
    first, second = store_factory(), store_factory()
    assert first.store_id == second.store_id and len(first.store_id) == 16


def test_the_last_paging_event_of_a_job_is_kept_per_target(store_factory):
    store = store_factory()
    assert store.alert_state("pagerduty:PD", "opsrun drift lab") is None
    store.set_alert_state("pagerduty:PD", "opsrun drift lab", "triggered", "f1", 3)
    store.set_alert_state("pagerduty:PD", "opsrun drift lab", "triggered", "f2", 4)
    store.set_alert_state("pagerduty:OTHER", "opsrun drift lab", "resolved", None, 4)
    again = store_factory()  # another connection: it was committed
    kept = again.alert_state("pagerduty:PD", "opsrun drift lab")
    assert (kept.state, kept.fingerprint, kept.run_id) == ("triggered", "f2", 4) and kept.updated_at
    assert again.alert_state("pagerduty:OTHER", "opsrun drift lab").state == "resolved"
    assert again.alert_state("pagerduty:PD", "opsrun dr-test lab") is None


def test_a_finished_runs_document_can_be_updated_without_moving_its_end(store_factory):
    store = store_factory()
    run_id = store.start_run("drift", "lab", None, revision=None)
    store.finish_run(run_id, {"status": "drift", "notified": []})
    [before] = store.runs("lab")
    store.update_document(run_id, {"status": "drift", "notified": ["pagerduty:PD: trigger (warning)"]})
    [after] = store.runs("lab")
    assert store.run(run_id)["notified"] == ["pagerduty:PD: trigger (warning)"]
    assert (after.status, after.finished_at) == (before.status, before.finished_at)

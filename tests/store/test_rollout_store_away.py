"""A rollout whose state store goes away: a real PostgreSQL server stopped and started under it, an SQLite
file locked by another process. The rollout is the real executor with the fake balancer and a scripted
engine (tests/unit/test_rollout_executor.py); what records it is `opsrun apply`'s own (runs.applying)."""

from __future__ import annotations

import threading

from opsrun.balancers.fake import FakeBalancer
from opsrun.model.project import Project
from opsrun.runs.recording import Recorder, record_outcome
from opsrun.store import open_store
from tests.store.test_store_away import Locker
from tests.unit.test_rollout_executor import HOSTS, Script, rollout


def rolled(project: Project, store, on_apply, before_end=lambda: None) -> tuple:
    """A rollout of HOSTS one at a time, recorded in `store` as `opsrun apply` records it (`before_end`
    runs before its outcome is): (the run, its id, the balancer)."""
    run_id = store.start_run("apply", "prod", "app", revision=None)
    recorder = Recorder(store, run_id)
    bal = FakeBalancer(HOSTS)
    ro = rollout(Script(on_apply=on_apply), bal, tmp_path=project.root)
    ro.record, recorder.halt = recorder, ro.halt
    run = ro.run(HOSTS)
    before_end()
    return record_outcome(project, store, run_id, run, recorder), run_id, bal


def places(doc: dict) -> dict:
    return {h: (d["outcome"], bool(d["in_balancer"])) for h, d in doc["hosts"].items()}


def test_a_postgresql_store_restarted_mid_rollout_does_not_end_it(pg, tmp_path):
    server, url, _state = pg
    project = Project(tmp_path)
    store = open_store(project.state_dir, url, retry=30)

    def restart(hosts):
        if hosts == ["web2"]:  # while web2 is drained and applied
            server.stop()
            threading.Timer(1.0, server.start).start()

    run, run_id, bal = rolled(project, store, restart)
    assert run.status == "success" and run.exit_code == 0 and run.record_error is None
    assert bal.admin == dict.fromkeys(HOSTS, "ready")
    assert places(store.run(run_id)) == dict.fromkeys(HOSTS, ("done", True))
    assert not (project.state_dir / "store-missed").exists()
    store.close()


def test_a_postgresql_store_away_past_its_window_stops_cleanly_and_the_next_run_records_it(pg, tmp_path):
    server, url, _state = pg
    project = Project(tmp_path)
    store = open_store(project.state_dir, url, retry=2)
    run, run_id, bal = rolled(project, store, lambda hosts: server.stop() if hosts == ["web2"] else None)

    # web2 was in flight: it went through its gates and back into the balancer; nobody else was touched
    assert {h: (o.outcome, o.in_balancer) for h, o in run.hosts.items()} == {
        "web1": ("done", True),
        "web2": ("done", True),
        "web3": ("not_reached", True),
        "web4": ("not_reached", True),
    }
    assert bal.admin == dict.fromkeys(HOSTS, "ready") and ("drain", "web3") not in bal.calls
    assert run.exit_code == 4 and run.halted.endswith("did not answer for 2s: no further host was drained")
    password = url.split(":")[2].split("@")[0]
    doc = run.to_dict()
    assert password not in str(doc)
    assert doc["record_error"].startswith(f"the state store at postgresql://127.0.0.1:{server.port}/... did not")
    assert (
        "it missed the places of its hosts since " in doc["record_error"]
        and "Fix: bring the Post" in doc["record_error"]
    )
    [kept] = (project.state_dir / "store-missed").iterdir()
    assert kept.name == f"{store.store_id}-{run_id}.json"
    store.close()

    server.start()
    again = open_store(project.state_dir, url)  # the next run opens the store: it learns the outcome
    assert again.reconciled == [run_id] and not kept.exists()
    shown = again.run(run_id)
    assert shown["status"] == "failed" and shown["record_error"] == doc["record_error"]
    assert places(shown) == {h: (o.outcome, o.in_balancer) for h, o in run.hosts.items()}
    again.close()


def test_a_store_that_answers_again_by_the_runs_end_gets_its_outcome(pg, tmp_path):
    server, url, _state = pg
    project = Project(tmp_path)
    store = open_store(project.state_dir, url, retry=1)
    stop_at_web2 = lambda hosts: server.stop() if hosts == ["web2"] else None  # noqa: E731
    run, run_id, _bal = rolled(project, store, stop_at_web2, before_end=server.start)
    assert run.exit_code == 4 and run.halted  # the rollout stopped for it all the same
    assert "by the run's end it answered again and has its outcome" in run.record_error
    assert not (project.state_dir / "store-missed").exists()
    assert store.run(run_id)["record_error"] == run.record_error and store.lost is None
    store.close()


def test_an_sqlite_store_locked_past_its_window_stops_the_rollout_cleanly(tmp_path):
    project = Project(tmp_path)
    store = open_store(project.state_dir, retry=1)
    lockers: list[Locker] = []
    try:
        run, run_id, bal = rolled(
            project,
            store,
            lambda hosts: lockers.append(Locker(project.state_dir / "state.db")) if hosts == ["web2"] else None,
        )
    finally:
        for locker in lockers:
            locker.release()
    assert [run.hosts[h].outcome for h in HOSTS] == ["done", "done", "not_reached", "not_reached"]
    assert bal.admin == dict.fromkeys(HOSTS, "ready") and run.exit_code == 4
    assert f"the state store at {project.state_dir / 'state.db'} did not answer for 1s" in run.record_error
    assert "database is locked" in run.record_error and "fuser" in run.record_error
    store.close()
    again = open_store(project.state_dir)
    assert again.reconciled == [run_id] and again.run(run_id)["status"] == "failed"
    again.close()

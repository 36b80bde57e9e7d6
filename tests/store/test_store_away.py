"""A state store that goes away and comes back: a real PostgreSQL server stopped and started, an SQLite file
locked by another process, an SQLite file on a full filesystem (a small tmpfs). Each call of the store is
retried as a whole for its window, then fails with the store's address (no password) and the fix."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from opsrun.errors import LockHeld, StoreUnavailable
from opsrun.store import open_store
from opsrun.support.waiting import Stop, abandon_when
from tests.conftest import fill

HOST = {"name": "web1", "batch": 1, "outcome": "not_reached", "stage": "apply", "in_balancer": False}


def test_a_postgresql_store_restarted_between_two_calls_reconnects_and_goes_on(pg):
    server, url, state = pg
    store = open_store(state, url, retry=30)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    server.stop()
    threading.Timer(1.0, server.start).start()  # a restart that takes a second
    store.record_host(run_id, HOST)  # retried until the server is back, on a new connection
    assert store.run(run_id)["status"] == "running" and store.lost is None
    rows = store._exec("SELECT host, stage FROM run_hosts WHERE run_id = ?", (run_id,)).fetchall()
    assert [tuple(r) for r in rows] == [("web1", "apply")]
    store.close()


def test_the_inventory_lock_is_taken_again_on_the_new_connection(pg):
    server, url, state = pg
    store, other = open_store(state, url, retry=30), None
    with store.lock("lab"):
        server.stop()
        server.start()
        store.set_lock_run("lab", 7)  # reconnects, and takes the advisory lock again on the new session
        other = open_store(state, url, retry=30)
        with pytest.raises(LockHeld, match=r"\(run 7\)"), other.lock("lab"):
            pass
    with other.lock("lab"):  # given back at the end of the block
        pass
    store.close()
    other.close()


def test_a_postgresql_store_away_past_its_window_says_where_and_what_to_do(pg):
    server, url, state = pg
    store = open_store(state, url, retry=2)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    server.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        store.record_host(run_id, HOST)
    took = time.monotonic() - started
    assert 2 <= took < 12, took
    message = str(err.value)
    password = url.split(":")[2].split("@")[0]
    assert password not in message and err.value.exit_code == 4
    assert message.startswith(f"the state store at postgresql://127.0.0.1:{server.port}/... did not answer for 2s (")
    assert "(OperationalError: connection failed: " in message
    assert message.endswith(
        "Fix: bring the PostgreSQL server back (or the network to it), or allow longer with --state-retry"
    )
    assert store.lost is err.value
    started = time.monotonic()  # lost: one try each from now on, no second window
    with pytest.raises(StoreUnavailable):
        store.finish_run(run_id, {"status": "failed", "hosts": {}})
    assert time.monotonic() - started < 1.5
    server.start()
    store.finish_run(run_id, {"status": "failed", "hosts": {}})  # back: it answers, and is no longer lost
    assert store.lost is None and store.run(run_id)["status"] == "failed"
    store.close()


LOCKER = """import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


class Locker:
    """Another process that holds the SQLite file locked (BEGIN EXCLUSIVE) until `release`."""

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def test_an_sqlite_file_locked_by_another_process_is_waited_for(tmp_path):
    store = open_store(tmp_path, retry=30)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    locker = Locker(tmp_path / "state.db")
    try:
        threading.Timer(3.0, locker.release).start()  # longer than one statement's own busy wait
        store.record_host(run_id, HOST)
    finally:
        locker.release()
    assert store.run(run_id)["run_id"] == run_id and store.lost is None
    assert store._exec("SELECT stage FROM run_hosts").fetchall() == [("apply",)]
    store.close()


def test_an_sqlite_file_locked_past_the_window_names_the_file_and_the_fix(tmp_path):
    store = open_store(tmp_path, retry=1)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    locker = Locker(tmp_path / "state.db")
    try:
        with pytest.raises(StoreUnavailable) as err:
            store.record_host(run_id, HOST)
    finally:
        locker.release()
    assert str(err.value).startswith(f"the state store at {tmp_path / 'state.db'} did not answer for 1s (")
    assert "database is locked" in str(err.value) and f"fuser {tmp_path / 'state.db'}" in err.value.fix
    store.close()


def test_an_sqlite_store_on_a_full_disk_is_retried_and_goes_on_once_there_is_room(small_disk, tmp_path):
    disk = small_disk(tmp_path / "disk")
    store = open_store(disk, retry=30)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    filler = fill(disk)
    threading.Timer(1.0, filler.unlink).start()  # someone frees space
    big = {**HOST, "reason": "x" * 200_000}  # more than the WAL's free pages
    store.record_host(run_id, big)
    assert store._exec("SELECT length(reason) FROM run_hosts").fetchall() == [(200_000,)]
    store.close()


def test_an_sqlite_store_on_a_full_disk_past_the_window_says_free_space(small_disk, tmp_path):
    disk = small_disk(tmp_path / "disk")
    store = open_store(disk, retry=1)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    fill(disk)
    with pytest.raises(StoreUnavailable) as err:
        store.record_host(run_id, {**HOST, "reason": "x" * 200_000})
    assert "database or disk is full" in str(err.value) and "free space on the filesystem of" in err.value.fix
    store.close()


def test_a_fault_that_is_not_the_store_being_away_surfaces_at_once(tmp_path):
    store = open_store(tmp_path, retry=60)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        store.retrying(lambda: store._exec("SELECT * FROM no_such_table"), write=False)
    with pytest.raises(TypeError):
        store.record_host(1, None)  # a bug in the caller
    assert time.monotonic() - started < 1 and store.lost is None
    store.close()


def test_a_call_met_by_a_restart_half_way_is_tried_again_whole(pg):
    """Its first statement, done before the server went away, is not left behind twice: the whole call is
    one transaction, tried again from its start on the new connection."""
    server, url, state = pg
    store = open_store(state, url, retry=30)
    tries: list[int] = []

    def call() -> None:
        tries.append(len(tries) + 1)
        store._exec("INSERT INTO meta (key, value) VALUES (?, 'x')", (f"try{tries[-1]}",))
        if len(tries) == 1:
            server.stop()
            threading.Timer(0.5, server.start).start()
        store._exec("SELECT 1")

    store.retrying(call, write=True)
    assert tries == [1, 2]
    assert store._exec("SELECT key FROM meta WHERE key LIKE ?", ("try%",)).fetchall() == [("try2",)]
    store.close()


def test_a_write_that_fails_half_way_leaves_nothing_half_written(tmp_path):
    """SQLite wrote each statement of a call on its own (autocommit): a call is one transaction now."""
    store = open_store(tmp_path)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    with pytest.raises(AttributeError):
        store.finish_run(run_id, {"status": "failed", "hosts": {"web1": None}})  # fails after its UPDATE
    assert store.run(run_id)["status"] == "running"
    store.close()


def test_an_outcome_the_store_missed_is_recorded_when_it_is_opened_next(tmp_path):
    store = open_store(tmp_path)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    doc = {"status": "failed", "record_error": "the state store ... did not answer", "hosts": {"web1": HOST}}
    kept = store.keep_missed(tmp_path, run_id, doc)
    assert kept == tmp_path / "store-missed" / f"{store.store_id}-{run_id}.json"
    assert json.loads(kept.read_text()) == doc
    store.close()
    again = open_store(tmp_path)
    assert again.reconciled == [run_id] and not kept.exists()
    shown = again.run(run_id)
    assert (shown["status"], shown["record_error"]) == ("failed", doc["record_error"])
    assert [r.status for r in again.runs("lab")] == ["failed"]
    again.close()
    assert open_store(tmp_path).reconciled == []


def test_the_operators_stop_now_ends_the_wait_for_the_store(tmp_path):
    """A rollout stopped now while its store is retried does not wait out the window: the store is lost
    (one try at the run's end), as if its window had passed."""
    store = open_store(tmp_path, retry=60)
    run_id = store.start_run("apply", "lab", "app", revision=None)
    stop = Stop()
    locker = Locker(tmp_path / "state.db")
    try:
        threading.Timer(0.5, stop.now.set).start()
        with abandon_when(stop.now), pytest.raises(StoreUnavailable) as err:
            store.record_host(run_id, HOST)
    finally:
        locker.release()
    assert store.lost is err.value and err.value.seconds < 10 and "database is locked" in str(err.value)
    store.close()

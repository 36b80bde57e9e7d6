"""Run history, findings and inventory locks: SQLite at .opsrun/state.db by default, PostgreSQL from a URL.

One schema for both (opsrun.store.database). A run is recorded when it starts (who, where, when, the ops
repo's git revision, inventory, deploy, plan) and completed when it ends (status, each host's outcome, stage
durations, the whole result document): opsrun.store.runs. Drift findings keep the day they were first seen
(opsrun.store.findings). A lock per inventory keeps two applies off one inventory (opsrun.store.locks).
The last event sent to a paging service per job is kept too (opsrun.store.alerts), and the hosts held out
of their balancer on purpose (opsrun.store.holds).

Each call is retried while the store is away, for its retry window (opsrun.store.database); a run whose
store did not answer at its end keeps its outcome under .opsrun/store-missed/, and the next opening of that
store records it (`reconcile`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model.secrets import register_url, safe_url
from opsrun.store.alerts import Alerts, AlertState
from opsrun.store.database import RETRY
from opsrun.store.findings import Findings
from opsrun.store.holds import Hold, Holds, LeftBy
from opsrun.store.locks import Locks
from opsrun.store.runs import RunRecords, RunRow, git_revision

__all__ = ["RETRY", "AlertState", "Hold", "LeftBy", "RunRow", "Store", "git_revision", "open_store"]

SQLITE_BUSY_WAIT = 2.0  # seconds one statement waits for another process's write; the retry window does the rest


class Store(RunRecords, Findings, Locks, Alerts, Holds):
    """Runs, findings, locks, paging state and hold marks on one connection: SQLite or PostgreSQL."""

    reconciled: list[int]  # the runs whose outcome it missed, recorded on opening


def open_store(state_dir: Path, url: str | None = None, *, retry: float = RETRY) -> Store:
    """SQLite at STATE_DIR/state.db, or PostgreSQL when `url` is postgresql://... The URL is a secret (its
    password, its query): it is shown as `safe_url` gives it, and masked wherever else it appears. `retry`:
    the seconds a store that stops answering is retried. Outcomes it missed are recorded now (`reconciled`)."""
    if url:
        register_url(url)
    if url and url.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            store = Store(
                lambda: psycopg.connect(url, connect_timeout=10), postgres=True, where=safe_url(url), retry=retry
            )
        except (psycopg.Error, ValueError) as exc:
            raise ConfigError(
                "--state",
                f"cannot connect to PostgreSQL at {safe_url(url)} ({type(exc).__name__}).",
                fix="check the URL (postgresql://USER@HOST:PORT/DB; the password in PGPASSWORD or ~/.pgpass) "
                "and that the server is up",
            ) from None
    else:
        store = _open_sqlite(state_dir, url, retry)
    try:
        store.reconciled = store.reconcile(state_dir)
    except BaseException:
        store.close()
        raise
    return store


def _open_sqlite(state_dir: Path, url: str | None, retry: float) -> Store:
    if url:
        raise ConfigError(
            "--state", f"unknown state store {safe_url(url)}.", fix="use postgresql://... or leave it out (SQLite)"
        )
    path = state_dir / "state.db"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():
            raise ConfigError(path, "is not a file.", fix="move it away; opsrun keeps its run history in this file")

        def connect() -> _AutoTx:
            sqlite = sqlite3.connect(path, timeout=SQLITE_BUSY_WAIT, isolation_level=None)
            sqlite.execute("PRAGMA journal_mode=WAL")
            return _AutoTx(sqlite)

        return Store(connect, postgres=False, where=str(path), retry=retry)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            path,
            f"cannot open the run history: {getattr(exc, 'strerror', None) or exc}.",
            fix=f"make {state_dir} a writable folder, and move a damaged or foreign state.db away (a new one is made)",
        ) from None


class _AutoTx:
    """sqlite3 in autocommit mode (isolation_level=None) with explicit BEGIN for the lock; commit() is a no-op
    outside a transaction, so the Store can call it the same way as on psycopg."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def commit(self) -> None:
        if self._conn.in_transaction:
            self._conn.commit()

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.rollback()

    def close(self) -> None:
        self._conn.close()

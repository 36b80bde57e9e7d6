"""The state store's connection: one schema on SQLite and PostgreSQL, made and brought up to date on open.

Every read and write of the store is one call (`reads`, `writes`) retried as a whole while the store is away (a
PostgreSQL restart or failover, an SQLite file locked by another process or on a full disk): with backoff, for
the store's retry window, reconnecting a closed connection. Only the errors that mean "away" are retried
(`is_away`); any other is a fault and surfaces at once. Past the window (or when the operator's stop now ends
the wait) the call raises StoreUnavailable and the store is `lost`: later calls get one try each, so that a
run ending without its store ends quickly.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import itertools
import os
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from opsrun.errors import Interrupted, StoreUnavailable, WaitTimeout
from opsrun.support.waiting import poll_until

RETRY = 60.0  # seconds a store that stopped answering is retried (--state-retry)
# SQLite's answers that mean "not now": another process holds the file, its disk is full, failing or read-only
SQLITE_AWAY = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY")
F = TypeVar("F", bound=Callable[..., Any])

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        id {id},
        kind TEXT NOT NULL, inventory TEXT NOT NULL, deploy TEXT,
        who TEXT NOT NULL, machine TEXT NOT NULL, revision TEXT,
        started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
        resumed_from INTEGER, plan TEXT, document TEXT)""",
    """CREATE TABLE IF NOT EXISTS run_hosts (
        run_id INTEGER NOT NULL, host TEXT NOT NULL, batch INTEGER, outcome TEXT NOT NULL, stage TEXT,
        reason TEXT, in_balancer INTEGER NOT NULL, seconds TEXT, PRIMARY KEY (run_id, host))""",
    """CREATE TABLE IF NOT EXISTS findings (
        id {id}, inventory TEXT NOT NULL, host TEXT NOT NULL, deploy TEXT NOT NULL, operation TEXT NOT NULL,
        fingerprint TEXT NOT NULL, verdict TEXT NOT NULL, detail TEXT, cause TEXT,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, resolved_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS locks (
        inventory TEXT PRIMARY KEY, run_id INTEGER, who TEXT NOT NULL, machine TEXT NOT NULL,
        pid INTEGER NOT NULL, since TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS holds (
        inventory TEXT NOT NULL, host TEXT NOT NULL, reason TEXT NOT NULL, who TEXT NOT NULL,
        since TEXT NOT NULL, PRIMARY KEY (inventory, host))""",
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alerts (
        target TEXT NOT NULL, dedup_key TEXT NOT NULL, state TEXT NOT NULL, fingerprint TEXT,
        run_id INTEGER, updated_at TEXT NOT NULL, PRIMARY KEY (target, dedup_key))""",
]
ADDED_COLUMNS = [("runs", "pid", "INTEGER")]  # added after the first release: created on open when missing


COLUMNS = {
    "runs": "id, kind, inventory, deploy, who, machine, revision, started_at, finished_at, status, resumed_from, "
    "plan, document",
    "run_hosts": "run_id, host, batch, outcome, stage, reason, in_balancer, seconds",
    "findings": "id, inventory, host, deploy, operation, fingerprint, verdict, detail, cause, first_seen, "
    "last_seen, resolved_at",
    "locks": "inventory, run_id, who, machine, pid, since",
    "holds": "inventory, host, reason, who, since",
    "alerts": "target, dedup_key, state, fingerprint, run_id, updated_at",
}


def utc_now() -> str:
    """The time now, as the store writes it (ISO 8601, UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def current_user() -> str:
    """Who runs this opsrun: the login name, or the uid when it has none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def is_away(exc: BaseException) -> bool:
    """Whether `exc` means the store is away for now (not a fault): psycopg's OperationalError (the server
    restarts, the connection closed, it cannot be reached), SQLite busy, locked, full, I/O or read-only."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return True
    name = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, sqlite3.OperationalError) and name.startswith(SQLITE_AWAY)


def backoff(first: float = 0.25, factor: float = 2.0, ceiling: float = 5.0) -> Callable[[], float]:
    """The pauses between two tries of a store that is away: often at first (a restart takes a second or
    two), then less (a failover, a long lock), up to `ceiling` seconds."""
    pauses = (min(first * factor**n, ceiling) for n in itertools.count())
    return lambda: next(pauses)


class _Away(Exception):
    """An attempt that met the store away: tried again until the window ends."""


def reads(method: F) -> F:
    """A store call that reads: retried as a whole while the store is away."""
    return _retried(method, write=False)


def writes(method: F) -> F:
    """A store call that writes: one transaction (SQLite: BEGIN IMMEDIATE), retried as a whole."""
    return _retried(method, write=True)


def _retried(method: F, *, write: bool) -> F:
    @functools.wraps(method)
    def call(self: Database, *args: Any, **kwargs: Any) -> Any:
        return self.retrying(functools.partial(method, self, *args, **kwargs), write=write)

    return call  # type: ignore[return-value]


class Database:
    """The same statements on SQLite and PostgreSQL; `?` placeholders are rewritten for psycopg. `connect`
    makes the connection (again, when the one it made closed); `retry` is the window in seconds."""

    def __init__(self, connect: Callable[[], Any], *, postgres: bool, where: str, retry: float = RETRY):
        self._connect = connect
        self.conn = connect()
        self.postgres = postgres
        self.where = where
        self.retry = retry
        self.lost: StoreUnavailable | None = None  # the store did not answer within its window
        self._depth = 0  # calls of this store in progress (an inner one is covered by the outer's retries)
        self._broken = False  # the connection closed: make a new one before the next try
        self.machine = socket.gethostname()
        for statement in SCHEMA:
            self._exec(statement.format(id="SERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY"))
        for table, column, kind in ADDED_COLUMNS:
            if column not in self._columns(table):
                self._exec(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")  # constants, not input
        for table, columns in COLUMNS.items():  # a table of that name made by something else fails here
            self._exec(f"SELECT {columns} FROM {table} LIMIT 0")  # noqa: S608 - constants of this module
        self._commit()
        self.store_id = self._store_id()

    def _columns(self, table: str) -> set[str]:
        if self.postgres:
            rows = self._exec("SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,))
            return {r[0] for r in rows.fetchall()}
        return {r[1] for r in self._exec(f"PRAGMA table_info({table})").fetchall()}

    def _store_id(self) -> str:
        """This store's identity, made once: it names the owner of the leases its runs put on hosts."""
        row = self._exec("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        if row is None:
            self._exec(
                "INSERT INTO meta (key, value) VALUES ('store_id', ?) ON CONFLICT DO NOTHING", (uuid.uuid4().hex[:16],)
            )
            self._commit()
            row = self._exec("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return str(row[0])

    def retrying(self, call: Callable[[], Any], *, write: bool) -> Any:
        """`call` (a whole store operation), tried again with backoff while the store is away, for the
        window (one try once the store is lost). StoreUnavailable past it, with the store's address and the fix."""
        if self._depth:  # inside another call of this store: that call's retries cover this one
            return call()
        last: list[BaseException] = []

        def attempt() -> tuple[Any]:
            self._depth += 1
            try:
                if self._broken:
                    self._reopen()
                if write and not self.postgres:
                    self.conn.execute("BEGIN IMMEDIATE")
                value = call()
                self._commit()
                return (value,)
            except BaseException as exc:
                self._quiet_rollback()
                if not is_away(exc):
                    raise
                self._broken = self.postgres and bool(getattr(self.conn, "closed", False))
                last[:] = [exc]
                raise _Away() from exc
            finally:
                self._depth -= 1

        window, started = (0.0 if self.lost else self.retry), time.monotonic()
        try:
            (value,) = poll_until(
                attempt, timeout=window, what=f"the state store at {self.where}", retry_on=(_Away,), pause=backoff()
            )
        except (WaitTimeout, Interrupted) as exc:  # past the window, or the operator stopped now meanwhile
            said = f"{type(last[0]).__name__}: {' '.join(str(last[0]).split())}" if last else "no answer"
            seconds = self.retry if isinstance(exc, WaitTimeout) else round(time.monotonic() - started, 1)
            self.lost = StoreUnavailable(self.where, seconds, said, self._fix(last[0] if last else None))
            raise self.lost from None
        self.lost = None
        return value

    def _fix(self, exc: BaseException | None) -> str:
        """What to do about a store that did not answer, by what it last said."""
        if self.postgres:
            return "bring the PostgreSQL server back (or the network to it), or allow longer with --state-retry"
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_FULL"):
            return f"free space on the filesystem of {self.where} (df -h)"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return f"another process holds {self.where}: find it (fuser {self.where}) and let it finish"
        return f"check the disk of {self.where} (dmesg, mount: is it read-only?)"

    def _reopen(self) -> None:
        """A new connection in place of one that closed (the server restarted)."""
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = self._connect()
        self._broken = False
        self._reconnected()

    def _reconnected(self) -> None:
        """Called on a new connection: what the old one held (its session locks) is taken again."""

    def _quiet_rollback(self) -> None:
        with contextlib.suppress(Exception):  # a closed or broken connection has nothing to roll back
            self.conn.rollback()

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return self.conn.execute(sql, params)

    def _commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

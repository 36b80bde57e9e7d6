"""The state store's connection: one schema on SQLite and PostgreSQL, made and brought up to date on open."""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from typing import Any

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


class Database:
    """The same statements on SQLite and PostgreSQL; `?` placeholders are rewritten for psycopg."""

    def __init__(self, conn: Any, *, postgres: bool, where: str):
        self.conn = conn
        self.postgres = postgres
        self.where = where
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

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return self.conn.execute(sql, params)

    def _commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

"""Run history and inventory locks: SQLite at .opsrun/state.db by default, PostgreSQL from a URL.

One schema for both. A run is recorded when it starts (who, where, when, the ops repo's git revision,
inventory, deploy, plan) and completed when it ends (status, each host's outcome, stage durations, the
whole result document). A lock per inventory keeps two applies off one inventory:

- SQLite: a row in `locks` naming the holder (user, machine, pid, since), taken in an IMMEDIATE
  transaction. A row whose process is gone on this machine is stale and taken over.
- PostgreSQL: a session advisory lock, taken on the store's one connection and held for the whole run
  (the server releases it when that connection ends, so also if opsrun dies), plus the same row for the
  message that names the holder.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import subprocess
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrun import processes
from opsrun.errors import ConfigError, LockHeld
from opsrun.secrets import redact, register_url, safe_url

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
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
]
ADDED_COLUMNS = [("runs", "pid", "INTEGER")]  # added after the first release: created on open when missing


COLUMNS = {
    "runs": "id, kind, inventory, deploy, who, machine, revision, started_at, finished_at, status, resumed_from, "
    "plan, document",
    "run_hosts": "run_id, host, batch, outcome, stage, reason, in_balancer, seconds",
    "findings": "id, inventory, host, deploy, operation, fingerprint, verdict, detail, cause, first_seen, "
    "last_seen, resolved_at",
    "locks": "inventory, run_id, who, machine, pid, since",
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def git_revision(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=10, check=False
        )
    except FileNotFoundError:
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    inventory: str
    deploy: str | None
    who: str
    machine: str
    started_at: str
    finished_at: str | None
    status: str
    revision: str | None
    resumed_from: int | None


class Store:
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

    # ------------------------------------------------------------------------------------------- runs
    def start_run(
        self,
        kind: str,
        inventory: str,
        deploy: str | None,
        *,
        revision: str | None,
        plan: dict[str, Any] | None = None,
        resumed_from: int | None = None,
    ) -> int:
        row = self._exec(
            "INSERT INTO runs (kind, inventory, deploy, who, machine, revision, started_at, status, resumed_from, "
            "plan, pid) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?) RETURNING id",
            (
                kind,
                inventory,
                deploy,
                _who(),
                self.machine,
                revision,
                _now(),
                resumed_from,
                json.dumps(plan) if plan is not None else None,
                os.getpid(),
            ),
        ).fetchone()
        self._commit()
        return int(row[0])

    def finish_run(self, run_id: int, document: dict[str, Any]) -> None:
        document = json.loads(redact(json.dumps(document)))
        self._exec(
            "UPDATE runs SET finished_at = ?, status = ?, document = ? WHERE id = ?",
            (_now(), document["status"], json.dumps(document), run_id),
        )
        for name, h in document.get("hosts", {}).items():
            self._put_host(run_id, name, h)
        self._commit()

    @contextlib.contextmanager
    def run_errors(self, run_id: int) -> Iterator[None]:
        """Whatever escapes the block (an error, Ctrl-C) ends run `run_id` as an error, with its type and
        message, and then goes on up: a run never stays "running" because its controller raised."""
        try:
            yield
        except BaseException as exc:
            self.finish_run(run_id, {"status": "error", "error": f"{type(exc).__name__}: {exc}", "hosts": {}})
            raise

    def record_host(self, run_id: int, host: dict[str, Any]) -> None:
        """A host's place in a running rollout (stage, outcome, in the balancer or not), kept as it changes, so
        that a run killed with -9 still says where it left each host."""
        self._put_host(run_id, host["name"], host)
        self._commit()

    def _put_host(self, run_id: int, name: str, h: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO run_hosts (run_id, host, batch, outcome, stage, reason, in_balancer, seconds) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, host) DO UPDATE SET batch = excluded.batch, "
            "outcome = excluded.outcome, stage = excluded.stage, reason = excluded.reason, "
            "in_balancer = excluded.in_balancer, seconds = excluded.seconds",
            (
                run_id,
                name,
                h.get("batch"),
                h.get("outcome") or h.get("status"),
                h.get("stage"),
                redact(h.get("reason") or "") or None,
                int(h.get("in_balancer", True)),
                json.dumps(h.get("seconds", {})),
            ),
        )

    def live_runs(self) -> list[int]:
        """Applies recorded as running (call after `interrupt_dead_runs`, under the inventory's lock): their
        leases on hosts still hold; any other run of this store holds none."""
        rows = self._exec("SELECT id FROM runs WHERE kind = 'apply' AND status = 'running'").fetchall()
        return [int(r[0]) for r in rows]

    def interrupt_dead_runs(self, inventory: str, *, found_by: str) -> list[dict[str, Any]]:
        """Call while holding the inventory's lock: an apply of it still `running` is one whose opsrun died
        (killed, machine lost). Each is marked `interrupted`, its document saying where it left each host;
        returned so that the caller can say so first and heal what it left."""
        rows = self._exec(
            "SELECT id, who, machine, pid, started_at FROM runs WHERE kind = 'apply' AND inventory = ? "
            "AND status = 'running' ORDER BY id",
            (inventory,),
        ).fetchall()
        dead = []
        for run_id, who, machine, pid, started in rows:
            hosts = {
                r[0]: {"outcome": r[1], "stage": r[2], "reason": r[3], "in_balancer": bool(r[4]), "batch": r[5]}
                for r in self._exec(
                    "SELECT host, outcome, stage, reason, in_balancer, batch FROM run_hosts WHERE run_id = ?",
                    (run_id,),
                ).fetchall()
            }
            doc = self.run(run_id)
            doc.update(
                status="interrupted",
                error=f"opsrun {who}@{machine} pid {pid} ended without finishing this run (found by {found_by})",
                hosts=hosts,
                left_out_of_balancer=[h for h, d in hosts.items() if not d["in_balancer"]],
            )
            self._exec(
                "UPDATE runs SET status = 'interrupted', finished_at = ?, document = ? WHERE id = ?",
                (_now(), json.dumps(doc), run_id),
            )
            dead.append({"run_id": run_id, "who": who, "machine": machine, "started_at": started, "hosts": hosts})
        self._commit()
        return dead

    def runs(self, inventory: str | None = None, limit: int = 50) -> list[RunRow]:
        cols = "id, kind, inventory, deploy, who, machine, started_at, finished_at, status, revision, resumed_from, pid"
        # cols is a constant: only the values are parameters
        if inventory:
            cur = self._exec(
                f"SELECT {cols} FROM runs WHERE inventory = ? ORDER BY id DESC LIMIT ?",  # noqa: S608
                (inventory, limit),
            )
        else:
            cur = self._exec(f"SELECT {cols} FROM runs ORDER BY id DESC LIMIT ?", (limit,))  # noqa: S608
        return [self._seen_dead(RunRow(*row[:-1]), row[-1]) for row in cur.fetchall()]

    def _seen_dead(self, row: RunRow, pid: int | None) -> RunRow:
        """A run still `running` whose process is gone on this machine died (kill -9): say so."""
        if row.status != "running" or row.machine != self.machine or pid is None or processes.alive(int(pid)):
            return row
        return RunRow(**{**vars(row), "status": "interrupted"})

    def run(self, run_id: int) -> dict[str, Any]:
        row = self._exec(
            "SELECT status, document, plan, kind, inventory, deploy FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise ConfigError(self.where, f"no run {run_id}.", fix="see `opsrun history` for the run ids")
        status, document, plan, kind, inventory, deploy = row
        if document:
            doc: dict[str, Any] = json.loads(document)
            doc["run_id"] = run_id
            return doc
        # a run that never finished (opsrun was killed): what is known of it
        return {
            "run_id": run_id,
            "kind": kind,
            "status": status,
            "inventory": inventory,
            "deploy": deploy,
            "plan": json.loads(plan) if plan else None,
            "hosts": {},
        }

    def recent(self, kind: str, inventory: str, limit: int = 12) -> list[dict[str, Any]]:
        """The documents of the last finished runs of `kind` on `inventory`, oldest first, with `started_at`."""
        rows = self._exec(
            "SELECT id, started_at, document FROM runs WHERE kind = ? AND inventory = ? AND document IS NOT NULL "
            "ORDER BY id DESC LIMIT ?",
            (kind, inventory, limit),
        ).fetchall()
        return [{**json.loads(doc), "run_id": rid, "started_at": started} for rid, started, doc in reversed(rows)]

    # ---------------------------------------------------------------------------------------- findings
    def last_clean_revision(self, inventory: str) -> str | None:
        row = self._exec(
            "SELECT revision FROM runs WHERE kind = 'drift' AND inventory = ? AND status = 'clean' "
            "ORDER BY id DESC LIMIT 1",
            (inventory,),
        ).fetchone()
        return row[0] if row else None

    def track_findings(
        self, inventory: str, findings: list[Any], *, checked: set[tuple[str, str]], cause: Callable[[str], str | None]
    ) -> list[dict[str, Any]]:
        """Match `findings` (drift.Finding, counted ones) with the open ones: persisting keep their first_seen,
        new ones are recorded with their cause; open findings of a checked (host, deploy) that are gone are
        resolved. Returns the resolved ones."""
        now = _now()
        open_rows = self._exec(
            "SELECT id, host, deploy, operation, fingerprint, first_seen, cause FROM findings "
            "WHERE inventory = ? AND resolved_at IS NULL",
            (inventory,),
        ).fetchall()
        by_key = {(r[1], r[2], r[3], r[4]): r for r in open_rows}
        seen: set[int] = set()
        for f in findings:
            row = by_key.get((f.host, f.deploy, f.operation, f.fingerprint))
            if row is not None:
                seen.add(row[0])
                f.status, f.first_seen, f.cause = "persisting", row[5], row[6]
                self._exec("UPDATE findings SET last_seen = ? WHERE id = ?", (now, row[0]))
            else:
                f.status, f.first_seen, f.cause = "new", now, cause(f.deploy)
                self._exec(
                    "INSERT INTO findings (inventory, host, deploy, operation, fingerprint, verdict, detail, cause, "
                    "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        inventory,
                        f.host,
                        f.deploy,
                        redact(f.operation),
                        f.fingerprint,
                        f.verdict,
                        redact(json.dumps(f.detail)),
                        f.cause,
                        now,
                        now,
                    ),
                )
        resolved = []
        for row in open_rows:
            if row[0] not in seen and (row[1], row[2]) in checked:
                self._exec("UPDATE findings SET resolved_at = ? WHERE id = ?", (now, row[0]))
                resolved.append(
                    {"host": row[1], "deploy": row[2], "operation": row[3], "first_seen": row[5], "resolved_at": now}
                )
        self._commit()
        return resolved

    # ------------------------------------------------------------------------------------------- locks
    @contextlib.contextmanager
    def lock(self, inventory: str, run_id: int | None = None) -> Iterator[None]:
        """Hold the inventory's lock for the block, or raise LockHeld naming who has it."""
        if self.postgres:
            with self._pg_lock(inventory, run_id):
                yield
            return
        self._sqlite_take(inventory, run_id)
        try:
            yield
        finally:
            self._exec(
                "DELETE FROM locks WHERE inventory = ? AND machine = ? AND pid = ?",
                (inventory, self.machine, os.getpid()),
            )
            self._commit()

    def set_lock_run(self, inventory: str, run_id: int) -> None:
        self._exec("UPDATE locks SET run_id = ? WHERE inventory = ?", (run_id, inventory))
        self._commit()

    def _holder(self, inventory: str) -> tuple[Any, ...] | None:
        row = self._exec(
            "SELECT who, machine, pid, since, run_id FROM locks WHERE inventory = ?", (inventory,)
        ).fetchone()
        return tuple(row) if row is not None else None

    def _refuse(self, inventory: str, holder: tuple[Any, ...] | None) -> LockHeld:
        if holder is None:
            return LockHeld(f"inventory {inventory} is being applied by another opsrun; nothing was touched")
        who, machine, pid, since, run_id = holder
        run = f" (run {run_id})" if run_id else ""
        return LockHeld(
            f"inventory {inventory} is locked by {who}@{machine} pid {pid} since {since}{run}; "
            "nothing was touched. Wait for that run, or see `opsrun history`."
        )

    def _sqlite_take(self, inventory: str, run_id: int | None) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            holder = self._holder(inventory)
            if holder is not None:
                _holder_who, machine, pid, _since, _run = holder
                stale = machine == self.machine and not processes.alive(int(pid))
                if not stale:
                    raise self._refuse(inventory, holder)
                self._exec("DELETE FROM locks WHERE inventory = ?", (inventory,))
            self._exec(
                "INSERT INTO locks (inventory, run_id, who, machine, pid, since) VALUES (?, ?, ?, ?, ?, ?)",
                (inventory, run_id, _who(), self.machine, os.getpid(), _now()),
            )
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    @contextlib.contextmanager
    def _pg_lock(self, inventory: str, run_id: int | None) -> Iterator[None]:
        key = zlib.crc32(f"opsrun:{inventory}".encode())
        got = self._exec("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]
        self._commit()
        if not got:
            raise self._refuse(inventory, self._holder(inventory))
        try:
            self._exec("DELETE FROM locks WHERE inventory = ?", (inventory,))
            self._exec(
                "INSERT INTO locks (inventory, run_id, who, machine, pid, since) VALUES (?, ?, ?, ?, ?, ?)",
                (inventory, run_id, _who(), self.machine, os.getpid(), _now()),
            )
            self._commit()
            yield
        finally:
            self._exec("DELETE FROM locks WHERE inventory = ?", (inventory,))
            self._exec("SELECT pg_advisory_unlock(?)", (key,))
            self._commit()


def open_store(state_dir: Path, url: str | None = None) -> Store:
    """SQLite at STATE_DIR/state.db, or PostgreSQL when `url` is postgresql://... The URL is a secret (its
    password, its query): it is shown as `safe_url` gives it, and masked wherever else it appears."""
    if url:
        register_url(url)
    if url and url.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            conn = psycopg.connect(url, connect_timeout=10)
        except (psycopg.Error, ValueError) as exc:
            raise ConfigError(
                "--state",
                f"cannot connect to PostgreSQL at {safe_url(url)} ({type(exc).__name__}).",
                fix="check the URL (postgresql://USER@HOST:PORT/DB; the password in PGPASSWORD or ~/.pgpass) "
                "and that the server is up",
            ) from None
        return Store(conn, postgres=True, where=safe_url(url))
    return _open_sqlite(state_dir, url)


def _open_sqlite(state_dir: Path, url: str | None) -> Store:
    if url:
        raise ConfigError(
            "--state", f"unknown state store {safe_url(url)}.", fix="use postgresql://... or leave it out (SQLite)"
        )
    path = state_dir / "state.db"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():
            raise ConfigError(path, "is not a file.", fix="move it away; opsrun keeps its run history in this file")
        sqlite = sqlite3.connect(path, timeout=30, isolation_level=None)
        sqlite.execute("PRAGMA journal_mode=WAL")
        return Store(_AutoTx(sqlite), postgres=False, where=str(path))
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

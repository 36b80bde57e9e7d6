"""Runs in the state store: recorded when they start, completed when they end, read back for history."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrun.errors import ConfigError, StoreUnavailable
from opsrun.model.secrets import redact, redact_values
from opsrun.store.database import Database, current_user, reads, utc_now, writes
from opsrun.support import processes

MISSED = "store-missed"  # under the state folder: the outcomes of runs whose store did not answer at their end


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


class RunRecords(Database):
    """A run's row (who, where, when, revision, plan), its hosts' places and its result document."""

    @writes
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
                current_user(),
                self.machine,
                revision,
                utc_now(),
                resumed_from,
                json.dumps(plan) if plan is not None else None,
                os.getpid(),
            ),
        ).fetchone()
        self._commit()
        return int(row[0])

    @writes
    def finish_run(self, run_id: int, document: dict[str, Any]) -> None:
        document = redact_values(document)
        self._exec(
            "UPDATE runs SET finished_at = ?, status = ?, document = ? WHERE id = ?",
            (utc_now(), document["status"], json.dumps(document), run_id),
        )
        for name, h in document.get("hosts", {}).items():
            self._put_host(run_id, name, h)
        self._commit()

    def update_document(self, run_id: int, document: dict[str, Any]) -> None:
        """Replace a finished run's document (what its notifications did, learnt after it finished)."""
        document = redact_values(document)
        self._exec("UPDATE runs SET document = ? WHERE id = ?", (json.dumps(document), run_id))
        self._commit()

    @contextlib.contextmanager
    def run_errors(self, run_id: int) -> Iterator[None]:
        """Whatever escapes the block (an error, Ctrl-C) ends run `run_id` as an error, with its type and
        message, and then goes on up: a run never stays "running" because its controller raised."""
        try:
            yield
        except BaseException as exc:
            with contextlib.suppress(StoreUnavailable):  # a store that is gone cannot learn it: the error goes on
                self.finish_run(run_id, {"status": "error", "error": f"{type(exc).__name__}: {exc}"})
            raise

    @writes
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

    @reads
    def live_runs(self) -> list[int]:
        """Applies recorded as running (call after `interrupt_dead_runs`, under the inventory's lock): their
        leases on hosts still hold; any other run of this store holds none."""
        rows = self._exec("SELECT id FROM runs WHERE kind = 'apply' AND status = 'running'").fetchall()
        return [int(r[0]) for r in rows]

    @writes
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
                (utc_now(), json.dumps(doc), run_id),
            )
            dead.append({"run_id": run_id, "who": who, "machine": machine, "started_at": started, "hosts": hosts})
        self._commit()
        return dead

    @reads
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

    @reads
    def run(self, run_id: int) -> dict[str, Any]:
        row = self._exec(
            "SELECT status, document, plan, kind, inventory, deploy FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise ConfigError(self.where, f"no run {run_id}.", fix="see `opsrun history` for the run ids")
        status, document, plan, kind, inventory, deploy = row
        if document:  # the row says what a document the run did not write itself leaves out (run_errors')
            doc: dict[str, Any] = {"kind": kind, "inventory": inventory, **json.loads(document)}
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

    @reads
    def recent(self, kind: str, inventory: str, limit: int = 12) -> list[dict[str, Any]]:
        """The documents of the last finished runs of `kind` on `inventory`, oldest first, with `started_at`."""
        rows = self._exec(
            "SELECT id, started_at, document FROM runs WHERE kind = ? AND inventory = ? AND document IS NOT NULL "
            "ORDER BY id DESC LIMIT ?",
            (kind, inventory, limit),
        ).fetchall()
        return [{**json.loads(doc), "run_id": rid, "started_at": started} for rid, started, doc in reversed(rows)]

    def keep_missed(self, state_dir: Path, run_id: int, document: dict[str, Any]) -> Path:
        """Keep the outcome of run `run_id`, which this store did not answer for, beside the project's results
        (.opsrun/store-missed/STORE-RUN.json): the next run with this store records it (`reconcile`)."""
        folder = state_dir / MISSED
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.store_id}-{run_id}.json"
        part = path.with_suffix(".part")
        part.write_text(json.dumps(redact_values(document), indent=2))
        os.replace(part, path)
        return path

    def reconcile(self, state_dir: Path) -> list[int]:
        """Record the outcomes this store missed (kept by `keep_missed`), and forget them; the runs' ids."""
        done = []
        for path in sorted((state_dir / MISSED).glob(f"{self.store_id}-*.json")):
            run_id = int(path.stem.rpartition("-")[2])
            try:
                document = json.loads(path.read_text())
            except (ValueError, OSError) as exc:
                raise ConfigError(
                    path, f"cannot be read back: {exc}.", fix="move it away (the run's outcome in it is lost)"
                ) from None
            self.finish_run(run_id, document)
            path.unlink()
            done.append(run_id)
        return done

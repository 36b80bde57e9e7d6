"""Hosts held out of their balancer on purpose (maintenance), and which opsrun run last left a host out.

A hold is a mark, not an action: `opsrun hold` writes it, `opsrun release` removes it, and drift reports the
held host's absence from its balancer as intentional until then. `left_out` reads run_hosts: the last apply
that recorded each host, when it left that host out of the balancer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsrun.store.database import Database, current_user, reads, utc_now, writes
from opsrun.support import processes

UNFINISHED = ("running", "interrupted", "error")  # a run that did not end as planned


@dataclass(frozen=True)
class Hold:
    host: str
    reason: str
    who: str
    since: str

    def __str__(self) -> str:
        return f"held by {self.who} since {self.since}: {self.reason}"


@dataclass(frozen=True)
class LeftBy:
    """The last apply that recorded a host, which left it out of the balancer."""

    run_id: int
    deploy: str
    status: str  # running (its process is gone) | interrupted | error | a finished run's status
    who: str
    machine: str
    started_at: str
    outcome: str

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED

    def __str__(self) -> str:
        run = f"run {self.run_id} ({self.deploy}, {self.who}@{self.machine}, started {self.started_at})"
        if self.status == "running":
            return f"{run} is still running"
        if self.unfinished:
            return f"{run} did not finish ({self.status})"
        return f"{run} {self.outcome} on it"


class Holds(Database):
    """The hold marks of an inventory's hosts, and the runs that left hosts out."""

    @writes
    def hold(self, inventory: str, host: str, reason: str) -> Hold:
        now, who = utc_now(), current_user()
        self._exec(
            "INSERT INTO holds (inventory, host, reason, who, since) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (inventory, host) DO UPDATE SET reason = excluded.reason, who = excluded.who, "
            "since = excluded.since",
            (inventory, host, reason, who, now),
        )
        self._commit()
        return Hold(host, reason, who, now)

    @writes
    def release(self, inventory: str, host: str) -> Hold | None:
        held = self.holds(inventory).get(host)
        self._exec("DELETE FROM holds WHERE inventory = ? AND host = ?", (inventory, host))
        self._commit()
        return held

    @reads
    def holds(self, inventory: str) -> dict[str, Hold]:
        rows = self._exec("SELECT host, reason, who, since FROM holds WHERE inventory = ?", (inventory,)).fetchall()
        return {r[0]: Hold(*r) for r in rows}

    @reads
    def left_out(self, inventory: str) -> dict[str, LeftBy]:
        """Each host whose last recorded apply on `inventory` left it out of the balancer, and that run (a
        run still `running` whose process is gone on this machine reads as interrupted)."""
        rows = self._exec(
            "SELECT h.host, r.id, r.deploy, r.status, r.who, r.machine, r.started_at, h.outcome, h.in_balancer, "
            "r.pid FROM run_hosts h JOIN runs r ON r.id = h.run_id WHERE r.kind = 'apply' AND r.inventory = ? "
            "ORDER BY r.id",
            (inventory,),
        ).fetchall()
        last: dict[str, Any] = {}
        for row in rows:  # oldest first: the last one recorded wins
            last[row[0]] = row
        out = {}
        for host, run_id, deploy, status, who, machine, started, outcome, in_balancer, pid in last.values():
            if in_balancer:
                continue
            if status == "running" and machine == self.machine and pid is not None and not processes.alive(pid):
                status = "interrupted"
            out[host] = LeftBy(int(run_id), deploy or "", status, who, machine, started, outcome)
        return out

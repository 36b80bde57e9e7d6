"""Inventory locks in the state store: two applies never touch one inventory at once.

- SQLite: a row in `locks` naming the holder (user, machine, pid, since), taken in an IMMEDIATE
  transaction. A row whose process is gone on this machine is stale and taken over.
- PostgreSQL: a session advisory lock, taken on the store's one connection and held for the whole run
  (the server releases it when that connection ends, so also if opsrun dies), plus the same row for the
  message that names the holder. A connection made again after the server restarted takes it again (the
  hosts' leases keep another run off them meanwhile).

Giving a lock back never fails a run: a store lost by then leaves a row of a dead process (SQLite: taken over
by the next run) or a session the server has ended (PostgreSQL: its lock went with it).
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from typing import Any

from opsrun.errors import LockHeld, StoreUnavailable
from opsrun.store.database import Database, current_user, utc_now, writes
from opsrun.support import processes


class Locks(Database):
    """The lock of an inventory, held for a block; its holder named to whoever is refused."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._pg_keys: set[int] = set()  # the advisory locks this store's PostgreSQL session holds
        super().__init__(*args, **kwargs)

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
            with contextlib.suppress(StoreUnavailable):
                self._sqlite_give_back(inventory)

    @writes
    def _sqlite_give_back(self, inventory: str) -> None:
        self._exec(
            "DELETE FROM locks WHERE inventory = ? AND machine = ? AND pid = ?", (inventory, self.machine, os.getpid())
        )

    @writes
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

    @writes
    def _sqlite_take(self, inventory: str, run_id: int | None) -> None:
        holder = self._holder(inventory)
        if holder is not None:
            _holder_who, machine, pid, _since, _run = holder
            stale = machine == self.machine and not processes.alive(int(pid))
            if not stale:
                raise self._refuse(inventory, holder)
            self._exec("DELETE FROM locks WHERE inventory = ?", (inventory,))
        self._exec(
            "INSERT INTO locks (inventory, run_id, who, machine, pid, since) VALUES (?, ?, ?, ?, ?, ?)",
            (inventory, run_id, current_user(), self.machine, os.getpid(), utc_now()),
        )

    @contextlib.contextmanager
    def _pg_lock(self, inventory: str, run_id: int | None) -> Iterator[None]:
        key = zlib.crc32(f"opsrun:{inventory}".encode())
        self._pg_take(inventory, run_id, key)
        try:
            yield
        finally:
            with contextlib.suppress(StoreUnavailable):
                self._pg_give_back(inventory, key)

    @writes
    def _pg_take(self, inventory: str, run_id: int | None, key: int) -> None:
        got = self._exec("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]
        if not got:
            raise self._refuse(inventory, self._holder(inventory))
        self._pg_keys.add(key)
        self._exec("DELETE FROM locks WHERE inventory = ?", (inventory,))
        self._exec(
            "INSERT INTO locks (inventory, run_id, who, machine, pid, since) VALUES (?, ?, ?, ?, ?, ?)",
            (inventory, run_id, current_user(), self.machine, os.getpid(), utc_now()),
        )

    @writes
    def _pg_give_back(self, inventory: str, key: int) -> None:
        self._pg_keys.discard(key)
        self._exec("DELETE FROM locks WHERE inventory = ?", (inventory,))
        self._exec("SELECT pg_advisory_unlock(?)", (key,))

    def _reconnected(self) -> None:
        for key in sorted(self._pg_keys):  # the old session's locks went with it
            self._exec("SELECT pg_try_advisory_lock(?)", (key,))
        self._commit()

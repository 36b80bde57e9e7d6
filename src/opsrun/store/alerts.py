"""The last event opsrun sent to a paging service for one job, so that an unchanged night sends nothing
and a clean one resolves what an earlier one triggered."""

from __future__ import annotations

from dataclasses import dataclass

from opsrun.store.database import Database, reads, utc_now, writes


@dataclass(frozen=True)
class AlertState:
    state: str  # triggered | resolved
    fingerprint: str | None  # what was triggered (status, severity, findings): a change is sent again
    run_id: int | None
    updated_at: str


class Alerts(Database):
    """One row per (target, dedup key), written only once the service accepted the event."""

    @reads
    def alert_state(self, target: str, dedup_key: str) -> AlertState | None:
        row = self._exec(
            "SELECT state, fingerprint, run_id, updated_at FROM alerts WHERE target = ? AND dedup_key = ?",
            (target, dedup_key),
        ).fetchone()
        return AlertState(*row) if row is not None else None

    @writes
    def set_alert_state(
        self, target: str, dedup_key: str, state: str, fingerprint: str | None, run_id: int | None
    ) -> None:
        self._exec(
            "INSERT INTO alerts (target, dedup_key, state, fingerprint, run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (target, dedup_key) DO UPDATE SET state = excluded.state, "
            "fingerprint = excluded.fingerprint, run_id = excluded.run_id, updated_at = excluded.updated_at",
            (target, dedup_key, state, fingerprint, run_id, utc_now()),
        )
        self._commit()

"""Drift findings in the state store: first seen, still there, resolved."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opsrun.model.documents.status import FindingStatus
from opsrun.model.secrets import redact
from opsrun.store.database import Database, reads, utc_now, writes


class Findings(Database):
    """Open findings matched run after run by (host, deploy, operation, fingerprint)."""

    @reads
    def last_clean_revision(self, inventory: str) -> str | None:
        row = self._exec(
            "SELECT revision FROM runs WHERE kind = 'drift' AND inventory = ? AND status = 'clean' "
            "ORDER BY id DESC LIMIT 1",
            (inventory,),
        ).fetchone()
        return row[0] if row else None

    @writes
    def track_findings(
        self, inventory: str, findings: list[Any], *, checked: set[tuple[str, str]], cause: Callable[[str], str | None]
    ) -> list[dict[str, Any]]:
        """Match `findings` (checks.drift.Finding, counted ones) with the open ones: persisting keep their first_seen,
        new ones are recorded with their cause; open findings of a checked (host, deploy) that are gone are
        resolved. Returns the resolved ones."""
        now = utc_now()
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
                # a cause the finding brings (a hold on a host) is read anew each run; others keep the first
                f.status, f.first_seen, f.cause = FindingStatus.PERSISTING, row[5], f.cause or row[6]
                self._exec("UPDATE findings SET last_seen = ?, cause = ? WHERE id = ?", (now, f.cause, row[0]))
            else:
                f.status, f.first_seen, f.cause = FindingStatus.NEW, now, f.cause or cause(f.deploy)
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

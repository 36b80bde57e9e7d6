"""What a PostgreSQL failover drill writes and reads to measure it: markers committed on the primary before the
failure (the RPO: which of them the promoted server has), and a write that tells when a server accepts writes
again (the RTO)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsrun.dr.postgres import MARKER_TABLE, connect


@dataclass(frozen=True)
class Written:
    marker: str
    at: float  # wall-clock time its commit was acknowledged


@dataclass(frozen=True)
class Loss:
    written: int
    lost: int
    seconds: float  # the window of lost writes: last acknowledged marker minus the newest one kept

    def describe(self, where: str) -> str:
        if not self.lost:
            return f"RPO 0 s: all {self.written} markers acknowledged before the failure are on {where}"
        return (
            f"RPO {self.seconds:.3f} s: {self.lost} of {self.written} markers acknowledged before the failure "
            f"are missing on {where}"
        )


def ensure_table(url: str) -> None:
    with connect(url) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (marker text PRIMARY KEY, at timestamptz)")


def write_markers(url: str, count: int, prefix: str) -> list[Written]:
    """`count` markers, each its own committed transaction, acknowledged in order."""
    written = []
    with connect(url) as conn:
        for i in range(count):
            marker = f"{prefix}-{i:05d}"
            conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s, clock_timestamp())", (marker,))  # noqa: S608
            written.append(Written(marker, time.time()))
    return written


def data_loss(url: str, written: list[Written]) -> Loss:
    """Which of the `written` markers the server of `url` has."""
    with connect(url) as conn:
        rows = conn.execute(
            f"SELECT marker FROM {MARKER_TABLE} WHERE marker = ANY(%s)",  # noqa: S608 - a constant name
            ([w.marker for w in written],),
        ).fetchall()
    kept = {r[0] for r in rows}
    lost = [w for w in written if w.marker not in kept]
    if not lost:
        return Loss(len(written), 0, 0.0)
    newest_kept = max((w.at for w in written if w.marker in kept), default=written[0].at)
    return Loss(len(written), len(lost), max(0.0, written[-1].at - newest_kept))


def forget(url: str, prefix: str) -> None:
    """The drill's markers removed (the write probes' too): a drill leaves no rows behind."""
    with connect(url) as conn:
        conn.execute(f"DELETE FROM {MARKER_TABLE} WHERE marker LIKE %s", (f"{prefix}%",))  # noqa: S608


def accepts_write(url: str, prefix: str) -> bool:
    """Whether the server of `url` takes a write now, on a new connection (a new DNS lookup, for an endpoint
    that moves); False while it refuses connections or is read-only."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            conn.execute(
                f"INSERT INTO {MARKER_TABLE} VALUES (%s, clock_timestamp())",  # noqa: S608 - a constant name
                (f"{prefix}-write-{time.time_ns()}",),
            )
        return True
    except (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction):
        return False

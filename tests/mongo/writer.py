"""A client that writes continuously to a replica set while its members restart (tests/mongo/ on loopback,
tests/lab/test_mongo_replicaset.py and test_mongo_keyfile_rotation.py on the lab)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from opsrun.support.waiting import poll_until


class SetWriter(threading.Thread):
    """insert_one({"i": 0, 1, ...}) through a replica-set client with retryable writes; `acked` holds what the
    primary acknowledged, `errors` when (monotonic seconds) and why a write failed even after its retry."""

    def __init__(self, uri: str):
        super().__init__(daemon=True)
        self.uri = uri
        self.client: MongoClient = MongoClient(uri, retryWrites=True, serverSelectionTimeoutMS=20000)
        self.stop = threading.Event()
        self.acked: list[int] = []
        self.errors: list[tuple[float, str]] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.client.test.writes.insert_one({"i": i})
                self.acked.append(i)
            except PyMongoError as exc:
                self.errors.append((time.monotonic(), type(exc).__name__))
                time.sleep(0.05)
            i += 1

    def stored(self) -> set[int]:
        """What the set holds now, read through a client of its own."""
        with MongoClient(self.uri, serverSelectionTimeoutMS=20000) as c:
            return {d["i"] for d in c.test.writes.find({})}

    def wrote(self, count: int, timeout: float = 60) -> None:
        what = f"{count} writes acknowledged"
        poll_until(lambda: len(self.acked) >= count, timeout=timeout, interval=0.05, what=what)


@contextlib.contextmanager
def writing(uri: str, around: int = 50) -> Iterator[SetWriter]:
    """A SetWriter for the block: `around` writes acknowledged before it, as many more after it; stopped."""
    writer = SetWriter(uri)
    writer.start()
    try:
        writer.wrote(around)
        yield writer
        writer.wrote(len(writer.acked) + around)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
        writer.client.close()


def error_windows(errors: list[tuple[float, str]], gap: float = 5.0) -> list[float]:
    """The failed writes grouped in windows (a pause of `gap` seconds starts a new one): each window's length."""
    windows: list[list[float]] = []
    for at, _why in errors:
        if windows and at - windows[-1][-1] <= gap:
            windows[-1].append(at)
        else:
            windows.append([at])
    return [w[-1] - w[0] for w in windows]

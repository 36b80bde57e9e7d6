"""A replica set on loopback for the tests of deploys/_mongo*.py: three processes of the lab's mongod stand-in
(tests/standins/mongod.py; there is no MongoDB server here) on free ports in a temporary folder, each with
its own keyfile, initiated with replSetInitiate. The deploy's view of the set (`members`) points at it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "mongod.py"
NAMES = ("m1", "m2", "m3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Member:
    """One member's folder (mongod.conf, keyfile, data, log) and process."""

    def __init__(self, base: Path, name: str):
        self.name, self.port, self.folder = name, free_port(), base / name
        self.folder.mkdir()
        self.keyfile = self.folder / "keyfile"
        self.conf = self.folder / "mongod.conf"
        self.conf.write_text(
            f"storage:\n  dbPath: {self.folder / 'data'}\nsystemLog:\n  path: {self.folder / 'mongod.log'}\n"
            f"net:\n  port: {self.port}\n  bindIp: 127.0.0.1\nreplication:\n  replSetName: rs0\n"
            f"security:\n  keyFile: {self.keyfile}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(STANDIN), "--config", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        """What `systemctl restart mongod` does to it: stopped, then started reading its keyfile again."""
        self.stop()
        self.start()


class ReplicaSet:
    def __init__(self, base: Path):
        self.members = [Member(base, n) for n in NAMES]

    def member(self, address: str) -> Member:
        return next(m for m in self.members if m.address == address)

    def as_deploy_sees_it(self) -> list[dict[str, Any]]:
        """`deploys._mongo.members()` for this set."""
        return [
            {"_id": i, "host": m.address, "priority": 1.0, "votes": 1, "inventory_host": m.name}
            for i, m in enumerate(self.members)
        ]

    @property
    def uri(self) -> str:
        return f"mongodb://{','.join(m.address for m in self.members)}/?replicaSet=rs0"


@pytest.fixture
def replica_set(tmp_path, monkeypatch) -> Iterator[ReplicaSet]:
    """Three healthy members on one key (every keyfile the same one-key file), stopped afterwards."""
    import secrets

    from deploys import _mongo, _mongo_keyfile

    rs = ReplicaSet(tmp_path)
    monkeypatch.setattr(_mongo, "members", rs.as_deploy_sees_it)
    monkeypatch.setattr(_mongo_keyfile, "members", rs.as_deploy_sees_it)
    old = secrets.token_hex(32)
    for m in rs.members:
        m.keyfile.write_text(old + "\n")
        m.keyfile.chmod(0o400)
        m.start()
    try:
        _mongo.wait_for("every member to answer", lambda: all(_mongo.hello(m.address) for m in rs.members))
        with _mongo.client(rs.members[0].address) as c:
            c.admin.command("replSetInitiate", _mongo.desired("rs0"))
        _mongo.wait_for("the set to be healthy", lambda: _mongo.healthy(rs.members[0].address, 3))
        yield rs
    finally:
        for m in rs.members:
            m.stop()


def health_seen_by(member: Member) -> dict[str, float]:
    """Each member's health as `member` sees it (replSetGetStatus)."""
    with MongoClient(member.address, directConnection=True, serverSelectionTimeoutMS=5000) as c:
        return {m["name"]: m["health"] for m in c.admin.command("replSetGetStatus")["members"]}

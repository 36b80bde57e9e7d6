#!/usr/bin/env python3
"""A protocol-level stand-in for mongod, for the lab (there is no MongoDB server package for this machine).

It speaks MongoDB's wire protocol (OP_QUERY for the driver's first handshake, OP_MSG after it) well
enough for pymongo to see a real 3-member replica set, and nothing more:

- hello/isMaster with setName, hosts, primary, me, setVersion and an electionId that grows with the term;
- replSetInitiate, replSetGetConfig, replSetReconfig (the version must grow by one; only on the primary),
  replSetGetStatus (members with state, health, optimes), replSetStepDown (an election: the healthy
  member with the highest priority takes over; the old primary is not electable for the given seconds);
- serverStatus, ping, buildInfo, insert and find (equality filters), endSessions, killCursors;
- writes to a member that is not primary fail with NotWritablePrimary and the RetryableWriteError label;
  retried writes (same lsid and txnNumber) are not applied twice.

Members talk to each other with the same protocol (`_standin*` commands): heartbeats every 0.5 s (state,
term, optime, config version), secondaries pull the primary's oplog, and when no primary has been seen for
2 s the best healthy member (priority, then optime, then _id) elects itself with a higher term. Keyfile
authentication between members, as far as a key rotation needs it: the keyfile is read as mongod 4.2+
reads it (one key, or a YAML sequence of keys, quoted or not; whitespace inside a key dropped), every
`_standin*` command carries the hashes of the sender's keys, and a member refuses one that shares none of
its own (AuthenticationFailed): members whose key sets do not intersect cannot talk, and see each other as
unhealthy; a member holding the old and the new key talks to both. Not simulated: SCRAM, the key's
character and length rules, authentication of clients, write concerns beyond w:1, arbiters, hidden/delayed
members, priority takeover, transactions, indexes, any query operator. State (config, term, oplog) survives
restarts in dbPath.

Runs with the distribution's python3 only: `mongod.py --config /etc/mongod.conf` (a subset of YAML:
net.port, net.bindIp, replication.replSetName, security.keyFile, storage.dbPath, systemLog.path).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------------------ BSON


class ObjectId(bytes):
    def __repr__(self) -> str:
        return f"ObjectId({self.hex()})"


class Timestamp(tuple):  # (time, inc)
    pass


class Int64(int):
    pass


def _cstring(data: bytes, i: int) -> tuple[str, int]:
    end = data.index(b"\x00", i)
    return data[i:end].decode(), end + 1


def decode(data: bytes, i: int = 0) -> tuple[dict[str, Any], int]:
    (size,) = struct.unpack_from("<i", data, i)
    end, i, doc = i + size - 1, i + 4, {}
    while i < end:
        kind = data[i]
        name, i = _cstring(data, i + 1)
        if kind == 0x01:
            (doc[name],) = struct.unpack_from("<d", data, i)
            i += 8
        elif kind == 0x02:
            (n,) = struct.unpack_from("<i", data, i)
            doc[name] = data[i + 4 : i + 3 + n].decode()
            i += 4 + n
        elif kind in (0x03, 0x04):
            sub, i = decode(data, i)
            doc[name] = list(sub.values()) if kind == 0x04 else sub
        elif kind == 0x05:
            (n,) = struct.unpack_from("<i", data, i)
            doc[name] = bytes(data[i + 5 : i + 5 + n])
            i += 5 + n
        elif kind == 0x07:
            doc[name] = ObjectId(data[i : i + 12])
            i += 12
        elif kind == 0x08:
            doc[name] = data[i] == 1
            i += 1
        elif kind == 0x09:
            (ms,) = struct.unpack_from("<q", data, i)
            doc[name] = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
            i += 8
        elif kind == 0x0A:
            doc[name] = None
        elif kind == 0x10:
            (doc[name],) = struct.unpack_from("<i", data, i)
            i += 4
        elif kind == 0x11:
            inc, t = struct.unpack_from("<II", data, i)
            doc[name] = Timestamp((t, inc))
            i += 8
        elif kind == 0x12:
            (v,) = struct.unpack_from("<q", data, i)
            doc[name] = Int64(v)
            i += 8
        else:
            raise ValueError(f"BSON type {kind:#x} is not supported by the stand-in")
    return doc, end + 1


def encode(doc: dict[str, Any]) -> bytes:
    out = bytearray()
    for key, value in doc.items():
        name = key.encode() + b"\x00"
        if isinstance(value, bool):
            out += b"\x08" + name + (b"\x01" if value else b"\x00")
        elif isinstance(value, Int64):
            out += b"\x12" + name + struct.pack("<q", value)
        elif isinstance(value, int):
            out += (
                (b"\x10" + name + struct.pack("<i", value))
                if -(2**31) <= value < 2**31
                else (b"\x12" + name + struct.pack("<q", value))
            )
        elif isinstance(value, float):
            out += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            raw = value.encode()
            out += b"\x02" + name + struct.pack("<i", len(raw) + 1) + raw + b"\x00"
        elif isinstance(value, dict):
            out += b"\x03" + name + encode(value)
        elif isinstance(value, (list, tuple)) and not isinstance(value, Timestamp):
            out += b"\x04" + name + encode({str(k): v for k, v in enumerate(value)})
        elif isinstance(value, ObjectId):
            out += b"\x07" + name + bytes(value)
        elif isinstance(value, bytes):
            out += b"\x05" + name + struct.pack("<i", len(value)) + b"\x00" + value
        elif isinstance(value, dt.datetime):
            out += b"\x09" + name + struct.pack("<q", int(value.timestamp() * 1000))
        elif isinstance(value, Timestamp):
            out += b"\x11" + name + struct.pack("<II", value[1], value[0])
        elif value is None:
            out += b"\x0a" + name
        else:
            raise TypeError(f"cannot encode {type(value).__name__}")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\x00"


# ------------------------------------------------------------------------------------------------ wire

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
_ids = iter(range(1, 2**31))


def op_msg(body: dict[str, Any], response_to: int = 0) -> bytes:
    payload = struct.pack("<I", 0) + b"\x00" + encode(body)
    return struct.pack("<iiii", 16 + len(payload), next(_ids), response_to, OP_MSG) + payload


def op_reply(body: dict[str, Any], response_to: int) -> bytes:
    payload = struct.pack("<iqii", 8, 0, 0, 1) + encode(body)  # AwaitCapable
    return struct.pack("<iiii", 16 + len(payload), next(_ids), response_to, OP_REPLY) + payload


def parse_msg(data: bytes) -> tuple[dict[str, Any], bool]:
    """OP_MSG body with document sequences folded in; and whether the client wants no reply."""
    (flags,) = struct.unpack_from("<I", data, 0)
    end = len(data) - (4 if flags & 1 else 0)
    i, body = 4, {}
    while i < end:
        kind = data[i]
        i += 1
        if kind == 0:
            body, i = decode(data, i)
        else:
            (size,) = struct.unpack_from("<i", data, i)
            stop = i + size
            ident, j = _cstring(data, i + 4)
            docs = []
            while j < stop:
                doc, j = decode(data, j)
                docs.append(doc)
            body[ident] = docs
            i = stop
    return body, bool(flags & 2)


async def read_message(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    header = await reader.readexactly(16)
    length, request_id, _to, opcode = struct.unpack("<iiii", header)
    return request_id, opcode, await reader.readexactly(length - 16)


async def call(address: str, body: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
    """One command to another member; raises OSError/TimeoutError when it does not answer."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    try:
        writer.write(op_msg({**body, "$db": "admin"}))
        await writer.drain()
        _rid, _op, data = await asyncio.wait_for(read_message(reader), timeout)
        return parse_msg(data)[0]
    finally:
        writer.close()


# ------------------------------------------------------------------------------------------------ the member

STATES = {0: "STARTUP", 1: "PRIMARY", 2: "SECONDARY", 8: "(not reachable/healthy)"}
ELECTION_TIMEOUT = 2.0
HEARTBEAT = 0.5


class Error(Exception):
    def __init__(self, code: int, name: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.reply = {"ok": 0.0, "errmsg": message, "code": code, "codeName": name}
        if retryable:
            self.reply["errorLabels"] = ["RetryableWriteError"]


class Member:
    def __init__(self, conf: dict[str, Any]):
        self.port = int(conf.get("net", {}).get("port", 27017))
        self.bind = str(conf.get("net", {}).get("bindIp", "127.0.0.1")).split(",")
        self.set_name = conf.get("replication", {}).get("replSetName", "")
        self.db_path = Path(conf.get("storage", {}).get("dbPath", "/var/lib/mongodb"))
        key_file = conf.get("security", {}).get("keyFile")
        # what this member proves and accepts: the hashes of its keys (no keyFile: no authentication at all)
        self.keys = {hashlib.sha256(k.encode()).hexdigest() for k in keyfile_keys(key_file)} if key_file else {""}
        self.started = time.monotonic()
        self.me = ""  # host:port as the config names it
        self.config: dict[str, Any] | None = None
        self.term = 0
        self.state = 0
        self.oplog: list[dict[str, Any]] = []  # {"i": optime index, "t": term, "wall": seconds, "ns", "doc": bson hex}
        self.data: dict[str, list[dict[str, Any]]] = {}
        self.peers: dict[str, dict[str, Any]] = {}  # address -> last heartbeat answer + "seen"
        self.no_election_until = 0.0
        self.retried: dict[bytes, tuple[int, dict[str, Any]]] = {}
        self.connections = 0
        self.opcounters = {"insert": 0, "query": 0, "command": 0}
        self._load()

    # -------------------------------------------------------------------------------------------- storage
    def _meta_path(self) -> Path:
        return self.db_path / "standin-meta.json"

    def _load(self) -> None:
        self.db_path.mkdir(parents=True, exist_ok=True)
        if self._meta_path().exists():
            meta = json.loads(self._meta_path().read_text())
            self.config, self.term = meta["config"], meta["term"]
        oplog = self.db_path / "standin-oplog.jsonl"
        if oplog.exists():
            for line in oplog.read_text().splitlines():
                if line.strip():
                    self._apply(json.loads(line), persist=False)
        if self.config:
            self.state = 2
            self.me = self._find_me() or ""

    def _save_meta(self) -> None:
        tmp = self._meta_path().with_suffix(".tmp")
        tmp.write_text(json.dumps({"config": self.config, "term": self.term}))
        os.replace(tmp, self._meta_path())

    def _apply(self, entry: dict[str, Any], persist: bool = True) -> None:
        self.oplog.append(entry)
        doc, _ = decode(bytes.fromhex(entry["doc"]))
        self.data.setdefault(entry["ns"], []).append(doc)
        if persist:
            with open(self.db_path / "standin-oplog.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")

    # -------------------------------------------------------------------------------------------- views
    def optime(self) -> int:
        return self.oplog[-1]["i"] if self.oplog else 0

    def optime_wall(self) -> float:
        return self.oplog[-1]["wall"] if self.oplog else 0.0

    def members(self) -> list[dict[str, Any]]:
        return list((self.config or {}).get("members", []))

    def _find_me(self) -> str | None:
        names = {socket.gethostname(), socket.getfqdn(), "localhost", *self.bind}
        for m in self.members():
            host, port = m["host"].rsplit(":", 1)
            if int(port) == self.port and (host in names or _is_local(host)):
                return str(m["host"])
        return None

    def healthy(self, address: str) -> bool:
        if address == self.me:
            return True
        peer = self.peers.get(address)
        return bool(
            peer and time.monotonic() - peer["seen"] < ELECTION_TIMEOUT and self.keys & set(peer.get("keys") or ())
        )

    def primary(self) -> str | None:
        if self.state == 1:
            return self.me
        best = None
        for address, peer in self.peers.items():
            if self.healthy(address) and peer.get("state") == 1 and (best is None or peer["term"] > best[1]):
                best = (address, peer["term"])
        return best[0] if best else None

    def election_id(self) -> ObjectId:
        return ObjectId(b"\x7f\xff\xff\xff" + b"\x00" * 4 + self.term.to_bytes(4, "big"))

    def hello(self) -> dict[str, Any]:
        base = {
            "helloOk": True,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
            "localTime": dt.datetime.now(dt.UTC),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": self.connections,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "readOnly": False,
            "ok": 1.0,
        }
        if not self.config or not self.me:
            return {**base, "isWritablePrimary": False, "ismaster": False, "secondary": False, "isreplicaset": True,
                    "info": "Does not have a valid replica set config"}  # fmt: skip
        primary = self.primary()
        doc = {
            **base,
            "isWritablePrimary": self.state == 1,
            "ismaster": self.state == 1,
            "secondary": self.state == 2,
            "setName": self.config["_id"],
            "setVersion": self.config["version"],
            "hosts": [m["host"] for m in self.members() if m.get("priority", 1) > 0 or m.get("votes", 1)],
            "me": self.me,
            "lastWrite": {
                "opTime": {"ts": Timestamp((int(self.optime_wall()), self.optime())), "t": Int64(self.term)},
                "lastWriteDate": dt.datetime.fromtimestamp(self.optime_wall() or time.time(), dt.UTC),
            },
        }
        if primary:
            doc["primary"] = primary
        if self.state == 1:
            doc["electionId"] = self.election_id()
        return doc

    # -------------------------------------------------------------------------------------------- commands
    async def command(self, body: dict[str, Any]) -> dict[str, Any]:
        name = next(iter(body))
        self.opcounters["command"] += 1
        handler = getattr(self, "cmd_" + name.lower().lstrip("_"), None)
        if handler is None:
            raise Error(59, "CommandNotFound", f"no such command: '{name}' (not simulated by the stand-in)")
        if name.startswith("_standin") and not self.keys & set(body.get("keys") or ()):
            log(f"authentication failed: {body.get('from') or 'a member'} holds no key of this member's keyFile")
            raise Error(18, "AuthenticationFailed", "no key in common with this member's keyFile")
        return await handler(body)

    async def cmd_hello(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.hello()

    cmd_ismaster = cmd_hello

    async def cmd_ping(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": 1.0}

    async def cmd_buildinfo(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"version": "7.0.0-opsrun-standin", "versionArray": [7, 0, 0, 0], "ok": 1.0}

    async def cmd_endsessions(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": 1.0}

    cmd_killcursors = cmd_endsessions

    async def cmd_serverstatus(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "host": self.me or socket.gethostname(),
            "version": "7.0.0-opsrun-standin",
            "process": "mongod",
            "uptime": float(int(time.monotonic() - self.started)),
            "connections": {"current": self.connections, "available": 51200},
            "opcounters": dict(self.opcounters),
            "repl": {k: v for k, v in self.hello().items() if k in ("setName", "hosts", "primary", "me")},
            "ok": 1.0,
        }

    def _check_config(self, config: dict[str, Any]) -> None:
        if config.get("_id") != self.set_name:
            raise Error(93, "InvalidReplicaSetConfig", f"set name {config.get('_id')!r} is not {self.set_name!r}")
        members = config.get("members") or []
        if not members or len({m["_id"] for m in members}) != len(members):
            raise Error(93, "InvalidReplicaSetConfig", "members must be a non-empty list with unique _id")

    async def cmd_replsetinitiate(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.config:
            raise Error(23, "AlreadyInitialized", "already initialized")
        config = dict(body["replSetInitiate"])
        self._check_config(config)
        config["version"], config["term"] = 1, 1
        self.config = config
        self.me = self._find_me() or ""
        if not self.me:
            self.config = None
            raise Error(93, "InvalidReplicaSetConfig", f"no member of the config is this node (port {self.port})")
        self.state = 2
        self._save_meta()
        await self._broadcast({"_standinConfig": self.config})
        await self._elect(reason="initiate")
        return {"ok": 1.0}

    async def cmd_replsetgetconfig(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.config:
            raise Error(94, "NotYetInitialized", "no replset config has been received")
        return {"config": {**self.config, "term": Int64(self.term)}, "ok": 1.0}

    async def cmd_replsetreconfig(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.state != 1:
            raise Error(10107, "NotWritablePrimary", "replSetReconfig should only be run on a writable PRIMARY")
        config = dict(body["replSetReconfig"])
        self._check_config(config)
        assert self.config is not None
        if int(config.get("version", 0)) != self.config["version"] + 1:
            raise Error(
                103,
                "NewReplicaSetConfigurationIncompatible",
                f"version {config.get('version')} must be {self.config['version'] + 1}",
            )
        config["term"] = self.term
        self.config = config
        self._save_meta()
        await self._broadcast({"_standinConfig": self.config})
        return {"ok": 1.0}

    async def cmd_replsetgetstatus(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.config:
            raise Error(94, "NotYetInitialized", "no replset config has been received")
        members = []
        for m in self.members():
            me = m["host"] == self.me
            peer = self.peers.get(m["host"], {})
            up = self.healthy(m["host"])
            state = self.state if me else (peer.get("state", 8) if up else 8)
            i, wall = (self.optime(), self.optime_wall()) if me else (peer.get("optime", 0), peer.get("wall", 0.0))
            members.append(
                {
                    "_id": m["_id"],
                    "name": m["host"],
                    "health": 1.0 if up else 0.0,
                    "state": state,
                    "stateStr": STATES.get(state, "UNKNOWN"),
                    "uptime": int(time.monotonic() - self.started) if me else int(peer.get("uptime", 0)),
                    "optime": {"ts": Timestamp((int(wall), i)), "t": Int64(self.term)},
                    "optimeDate": dt.datetime.fromtimestamp(wall, dt.UTC),
                    "configVersion": self.config["version"] if me else peer.get("configVersion", -1),
                    **(
                        {"self": True}
                        if me
                        else {"lastHeartbeatMessage": "" if up else peer.get("error", "no heartbeat")}
                    ),
                }
            )
        return {
            "set": self.config["_id"],
            "date": dt.datetime.now(dt.UTC),
            "myState": self.state,
            "term": Int64(self.term),
            "members": members,
            "ok": 1.0,
        }

    async def cmd_replsetstepdown(self, body: dict[str, Any]) -> dict[str, Any]:
        """Stop taking writes, let the best secondary catch up with every write this primary acknowledged
        (up to 10 s, as secondaryCatchUpPeriodSecs), then make it primary: a planned stepdown loses nothing."""
        if self.state != 1:
            raise Error(189, "PrimarySteppedDown", "not primary so can't step down")
        seconds = float(body.get("replSetStepDown", 60))
        self.state = 2
        for candidate in self._candidates(exclude=self.me):
            ask = {"_standinCatchup": self.me, "optime": self.optime()}
            answer = await self._quiet(candidate["host"], ask, timeout=12)
            if answer and answer.get("ok") and await self._make_primary(candidate["host"], "stepdown"):
                self.no_election_until = time.monotonic() + seconds
                return {"ok": 1.0}
        self.state = 1
        raise Error(262, "ExceededTimeLimit", "no electable secondaries caught up")

    async def cmd_insert(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.state != 1:
            raise Error(10107, "NotWritablePrimary", "not primary", retryable=True)
        key = None
        if "lsid" in body and "txnNumber" in body:
            key = encode(body["lsid"]) + struct.pack("<q", int(body["txnNumber"]))
            if key in self.retried:
                return self.retried[key][1]
        ns = f"{body.get('$db', 'test')}.{body['insert']}"
        for doc in body.get("documents", []):
            entry = {"i": self.optime() + 1, "t": self.term, "wall": time.time(), "ns": ns, "doc": encode(doc).hex()}
            self._apply(entry)
            self.opcounters["insert"] += 1
        reply = {"n": len(body.get("documents", [])), "ok": 1.0}
        if key is not None:
            self.retried[key] = (self.term, reply)
        return reply

    async def cmd_find(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.state != 1 and not body.get("$readPreference"):
            raise Error(13435, "NotPrimaryNoSecondaryOk", "not primary and secondaryOk=false")
        ns = f"{body.get('$db', 'test')}.{body['find']}"
        wanted = body.get("filter") or {}
        found = [d for d in self.data.get(ns, []) if all(d.get(k) == v for k, v in wanted.items())]
        if body.get("limit"):
            found = found[: int(body["limit"])]
        self.opcounters["query"] += 1
        return {"cursor": {"firstBatch": found, "id": Int64(0), "ns": ns}, "ok": 1.0}

    # internal commands between members
    async def cmd_standinheartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "state": self.state,
            "term": self.term,
            "optime": self.optime(),
            "wall": self.optime_wall(),
            "uptime": time.monotonic() - self.started,
            "configVersion": (self.config or {}).get("version", -1),
            "config": self.config,
            "keys": sorted(self.keys),
            "ok": 1.0,
        }

    async def cmd_standinconfig(self, body: dict[str, Any]) -> dict[str, Any]:
        self._adopt(body["_standinConfig"])
        return {"ok": 1.0}

    async def cmd_standinelect(self, body: dict[str, Any]) -> dict[str, Any]:
        term = int(body["_standinElect"])
        if term > self.term:
            self.term, self.state = term, 1
            self._save_meta()
        return {"ok": 1.0}

    async def cmd_standinoplog(self, body: dict[str, Any]) -> dict[str, Any]:
        since = int(body["_standinOplog"])
        return {"entries": [e for e in self.oplog if e["i"] > since][:1000], "ok": 1.0}

    async def cmd_standincatchup(self, body: dict[str, Any]) -> dict[str, Any]:
        source, target = body["_standinCatchup"], int(body["optime"])
        deadline = time.monotonic() + 10
        while self.optime() < target and time.monotonic() < deadline:
            answer = await self._quiet(source, {"_standinOplog": self.optime()})
            for entry in (answer or {}).get("entries", []):
                if entry["i"] == self.optime() + 1:
                    self._apply(entry)
        return {"ok": 1.0 if self.optime() >= target else 0.0, "optime": self.optime()}

    # -------------------------------------------------------------------------------------------- cluster
    def _adopt(self, config: dict[str, Any] | None) -> None:
        if config and config.get("_id") == self.set_name and config["version"] > (self.config or {}).get("version", 0):
            self.config = config
            self.me = self._find_me() or ""
            if self.state == 0:
                self.state = 2
            self._save_meta()

    async def _broadcast(self, body: dict[str, Any]) -> None:
        others = [m["host"] for m in self.members() if m["host"] != self.me]
        await asyncio.gather(*(self._quiet(a, body) for a in others))

    async def _quiet(self, address: str, body: dict[str, Any], timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            return await call(address, {**body, "keys": sorted(self.keys), "from": self.me}, timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            return None

    def _candidates(self, exclude: str | None = None) -> list[dict[str, Any]]:
        """Electable members, best first: healthy, priority > 0, keyfile matches; priority, optime, _id."""
        out = []
        for m in self.members():
            if m["host"] == exclude or m.get("priority", 1) <= 0 or not self.healthy(m["host"]):
                continue
            if m["host"] == self.me:
                if time.monotonic() < self.no_election_until:
                    continue
                optime = self.optime()
            else:
                optime = self.peers[m["host"]].get("optime", 0)
            out.append({"host": m["host"], "priority": m.get("priority", 1), "optime": optime, "_id": m["_id"]})
        return sorted(out, key=lambda c: (-c["priority"], -c["optime"], c["_id"]))

    async def _elect(self, reason: str, exclude: str | None = None) -> bool:
        """The best candidate becomes primary with a new term. True if there was one."""
        candidates = self._candidates(exclude)
        return bool(candidates) and await self._make_primary(candidates[0]["host"], reason)

    async def _make_primary(self, winner: str, reason: str) -> bool:
        term = max([self.term, *(p.get("term", 0) for p in self.peers.values())]) + 1
        if winner == self.me:
            self.term, self.state = term, 1
            self._save_meta()
        else:
            answer = await self._quiet(winner, {"_standinElect": term})
            if not answer or not answer.get("ok"):
                return False
            self.term = term
            self._save_meta()
        log(f"election ({reason}): {winner} is primary in term {term}")
        return True

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            others = [m["host"] for m in self.members() if m["host"] != self.me]
            answers = await asyncio.gather(*(self._quiet(a, {"_standinHeartbeat": 1}) for a in others))
            for address, answer in zip(others, answers, strict=False):
                if answer and answer.get("ok"):
                    self.peers[address] = {**answer, "seen": time.monotonic()}
                    self._adopt(answer.get("config"))
                    if answer["term"] > self.term:
                        self.term = answer["term"]
                        if self.state == 1 and answer["state"] == 1:
                            self.state = 2  # a newer primary exists
                        self._save_meta()
                elif address in self.peers:
                    self.peers[address]["error"] = (answer or {}).get("errmsg") or "heartbeat failed"
            if self.config and self.me and self.state == 2 and self.primary() is None:
                waited = time.monotonic() - max([self.started, *(p["seen"] for p in self.peers.values())] or [0])
                quiet = all(not self.healthy(a) or self.peers[a].get("state") != 1 for a in self.peers)
                best = self._candidates()
                if quiet and best and best[0]["host"] == self.me and waited >= 0:
                    await asyncio.sleep(ELECTION_TIMEOUT)
                    if self.primary() is None and self._candidates() and self._candidates()[0]["host"] == self.me:
                        await self._elect(reason="no primary")

    async def replication(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            primary = self.primary()
            if self.state != 2 or not primary or primary == self.me:
                continue
            answer = await self._quiet(primary, {"_standinOplog": self.optime()})
            for entry in (answer or {}).get("entries", []):
                if entry["i"] == self.optime() + 1:
                    self._apply(entry)

    # -------------------------------------------------------------------------------------------- serving
    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                request_id, opcode, data = await read_message(reader)
                if opcode == OP_QUERY:  # the driver's first handshake: isMaster/hello on admin.$cmd
                    (_flags,) = struct.unpack_from("<i", data, 0)
                    _name, i = _cstring(data, 4)
                    query, _ = decode(data, i + 8)
                    writer.write(op_reply(await self._answer(query), request_id))
                elif opcode == OP_MSG:
                    body, no_reply = parse_msg(data)
                    reply = await self._answer(body)
                    if not no_reply:
                        writer.write(op_msg(reply, request_id))
                else:
                    writer.write(
                        op_msg({"ok": 0.0, "errmsg": f"opcode {opcode} not simulated", "code": 352}, request_id)
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections -= 1
            writer.close()

    async def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        if "$query" in body:
            body = body["$query"]
        try:
            return await self.command(body)
        except Error as exc:
            return exc.reply
        except Exception as exc:
            return {"ok": 0.0, "errmsg": f"{type(exc).__name__}: {exc}", "code": 8000, "codeName": "StandinError"}


def _is_local(address: str) -> bool:
    """Whether `address` is one of this machine's: only those can be bound."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False


def keyfile_keys(path: str) -> list[str]:
    """The keys of a keyfile as mongod 4.2+ reads it: one YAML scalar, or a sequence of scalars (`- KEY`,
    optionally in single or double quotes); the whitespace inside a key is dropped. Refuses an empty one."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    sequence = bool(lines) and all(ln.startswith("- ") for ln in lines)
    items = [ln[2:].strip() for ln in lines] if sequence else [" ".join(lines)]
    keys = []
    for item in items:
        if len(item) > 1 and item[0] == item[-1] and item[0] in "'\"":
            item = item[1:-1].replace("''", "'") if item[0] == "'" else item[1:-1]
        keys.append("".join(item.split()))
    if not any(keys):
        raise SystemExit(f"no key in the keyFile {path}")
    return [k for k in keys if k]


def read_conf(path: str) -> dict[str, Any]:
    """The YAML subset mongod.conf uses here: nested `key: value` maps by indentation, # comments."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        if value.strip():
            v = value.strip().strip('"')
            stack[-1][1][key] = int(v) if v.isdigit() else v
        else:
            stack[-1][1][key] = child = {}
            stack.append((indent, child))
    return root


LOG: list[Any] = [sys.stderr]


def log(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    print(f"{stamp} {message}", file=LOG[0], flush=True)


async def main(argv: list[str]) -> None:
    conf = read_conf(argv[argv.index("--config") + 1] if "--config" in argv else "/etc/mongod.conf")
    if conf.get("systemLog", {}).get("path"):
        LOG[0] = open(conf["systemLog"]["path"], "a")
    member = Member(conf)
    servers = [await asyncio.start_server(member.serve_client, host, member.port) for host in member.bind]
    log(f"opsrun mongod stand-in listening on {', '.join(member.bind)}:{member.port}, set {member.set_name!r}")
    asyncio.get_running_loop().create_task(member.heartbeats())
    asyncio.get_running_loop().create_task(member.replication())
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass

"""The MongoDB replica set's keyfile rotated live by `opsrun apply lab mongo_replicaset --serial 100%`
(deploys/_mongo_keyfile.py) while a client writes continuously: every member restarted with both keys, then
with the new one alone, one at a time; no acknowledged write lost, failed writes only around the stepdowns,
every member's keyfile the new key alone, the set healthy, verify passing, a second apply changing nothing;
afterwards a member started with the old key alone is shut out of the set. Under the rolling policy of one
member per batch the rotation is refused before anything changes.

mongod on the lab hosts is the stand-in of tests/standins/mongod.py: it honours keyfile authentication
between members (members whose keys do not intersect cannot talk), not SCRAM; see the README ("What is real
in the tests"). Each test starts from a fresh set on the session's key (OPSRUN_MONGO_KEYFILE) and leaves the
set on it."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from opsrun.support.waiting import poll_until
from tests.conftest import opsrun_json
from tests.lab.conftest import converge, install_mongod
from tests.mongo.writer import error_windows, writing

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
KEYFILE = "/etc/mongod.keyfile"
BOTH = "Keyfile with the old and the new key (members restarted one at a time)"
ALONE = "Keyfile with the new key alone (members restarted one at a time)"


@pytest.fixture
def session_key(lab, on_host) -> Iterator[str]:
    """A fresh set on the session's key, mongod running on every member; afterwards the set on that key
    again, whatever the test set the variable to (converge applies to every member in one pyinfra run,
    which rotates the key back when it differs)."""
    key = os.environ["OPSRUN_MONGO_KEYFILE"]
    install_mongod(on_host, HOSTS)
    converge("mongo_replicaset")
    try:
        yield key
    finally:
        os.environ["OPSRUN_MONGO_KEYFILE"] = key
        converge("mongo_replicaset")


def uri(addresses) -> str:
    return f"mongodb://{','.join(f'{addresses[h]}:27017' for h in HOSTS)}/?replicaSet=rs0"


def changed_ops(doc: dict) -> dict[str, list[str]]:
    return {h: [op["name"] for op in d["operations"] if op["changed"]] for h, d in doc["hosts"].items()}


def keyfiles(on_host) -> dict[str, str]:
    """Each host's keyfile: its SHA-1, owner and mode (never its content)."""
    return {h: on_host(h, f"sha1sum {KEYFILE} | cut -d' ' -f1; stat -c '%U %a' {KEYFILE}").stdout for h in HOSTS}


def health_seen_from(addresses, host: str) -> dict[str, tuple[str, float]]:
    with MongoClient(addresses[host], 27017, directConnection=True, serverSelectionTimeoutMS=10000) as c:
        status = c.admin.command("replSetGetStatus")
    return {m["name"]: (m["stateStr"], m["health"]) for m in status["members"]}


def test_the_keyfile_is_rotated_live_under_a_writing_client(session_key, addresses, on_host):
    old, new = session_key, secrets.token_hex(48)
    with writing(uri(addresses)) as writer:
        os.environ["OPSRUN_MONGO_KEYFILE"] = new
        code, doc = opsrun_json("apply", "lab", "mongo_replicaset", "--serial", "100%")
    assert code == 0, doc
    assert set(writer.acked) <= writer.stored(), "an acknowledged write was lost"
    assert [sorted(b) for b in doc["plan"]["batches"]] == [HOSTS]
    for h in HOSTS:
        assert BOTH in changed_ops(doc)[h] and ALONE in changed_ops(doc)[h], changed_ops(doc)
    assert len(writer.acked) > 200, "the writer hardly wrote"
    windows = error_windows(writer.errors)
    assert len(windows) <= 4 and all(w < 15 for w in windows), writer.errors  # around the stepdowns only
    want = hashlib.sha1((new + "\n").encode()).hexdigest()  # what sha1sum gives
    assert keyfiles(on_host) == {h: f"{want}\nmongodb 400\n" for h in HOSTS}
    states = health_seen_from(addresses, "web1")
    assert sorted(s for s, _h in states.values()) == ["PRIMARY", "SECONDARY", "SECONDARY"], states
    assert all(health == 1 for _s, health in states.values()), states
    code, verified = opsrun_json("verify", "lab", "mongo_replicaset")
    assert code == 0, verified
    code, again = opsrun_json("apply", "lab", "mongo_replicaset")  # the policy's one member per batch
    assert code == 0, again
    assert changed_ops(again) == {h: [] for h in HOSTS}
    text = json.dumps(doc) + json.dumps(again)
    assert text.count(new) == 0 and text.count(old) == 0
    old_key_alone_is_shut_out(addresses, on_host, old, new)


def old_key_alone_is_shut_out(addresses, on_host, old: str, new: str) -> None:
    """web3 started with the old key alone: no member takes it; put back on the new key afterwards."""
    member = f"{addresses['web3']}:27017"

    def restart_web3_with(key: str) -> None:
        on_host("web3", f"cat > {KEYFILE} <<'EOF'\n{key}\nEOF\nsystemctl restart mongod")

    restart_web3_with(old)
    try:
        poll_until(
            lambda: health_seen_from(addresses, "web1").get(member, ("", 1.0))[1] == 0,
            timeout=30,
            interval=0.5,
            what="web1 to see web3 (on the old key alone) unhealthy",
        )
    finally:
        restart_web3_with(new)
        poll_until(
            lambda: all(h == 1 for _s, h in health_seen_from(addresses, "web1").values()),
            timeout=60,
            interval=0.5,
            what="web3 back in the set on the new key",
        )


def test_a_rotation_one_member_per_batch_is_refused_before_anything_changes(session_key, addresses, on_host):
    before = keyfiles(on_host)
    os.environ["OPSRUN_MONGO_KEYFILE"] = secrets.token_hex(48)
    code, doc = opsrun_json("apply", "lab", "mongo_replicaset")  # the policy: one member per batch
    assert code == 1, doc
    text = json.dumps(doc)
    assert "a live rotation restarts every member twice, one at a time" in text
    assert "Nothing was changed. Fix: apply mongo_replicaset to every member in one batch" in text
    assert "--serial 100%" in text
    assert keyfiles(on_host) == before
    assert all(on_host(h, "systemctl is-active mongod").stdout.strip() == "active" for h in HOSTS)
    states = health_seen_from(addresses, "web1")
    assert all(s in ("PRIMARY", "SECONDARY") and health == 1 for s, health in states.values()), states

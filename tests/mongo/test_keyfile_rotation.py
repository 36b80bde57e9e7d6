"""The keyfile rotation of deploys/_mongo_keyfile.py on a replica set of three stand-in members on loopback
(tests/mongo/conftest.py): the stand-in honours keyfile authentication between members as far as a
rotation needs it, and the deploy's two passes move every member to the new key while a client writes,
losing no acknowledged write. What the stand-in does not prove about real MongoDB is said in the README
("What is real in the tests"); tests/lab/test_mongo_keyfile_rotation.py drives the same through
`opsrun apply` on hosts."""

from __future__ import annotations

import secrets

from deploys import _mongo, _mongo_keyfile
from opsrun.support.waiting import poll_until
from tests.mongo.conftest import Member, ReplicaSet, health_seen_by
from tests.mongo.writer import error_windows, writing


def keys_of(member: Member) -> list[str]:
    return _mongo_keyfile.parse(member.keyfile.read_text())


def restarted_with(member: Member, text: str) -> None:
    member.keyfile.chmod(0o600)
    member.keyfile.write_text(text)
    member.keyfile.chmod(0o400)
    member.restart()


def sees(observer: Member, other: Member, health: float) -> None:
    poll_until(
        lambda: health_seen_by(observer).get(other.address) == health,
        timeout=20,
        interval=0.2,
        what=f"{observer.name} to see {other.name} with health {health}",
    )


def test_members_talk_only_when_their_keyfiles_share_a_key(replica_set: ReplicaSet):
    m1, m2, m3 = replica_set.members
    (old,) = keys_of(m1)
    new = secrets.token_hex(32)
    restarted_with(m3, new + "\n")  # the new key alone: shares nothing with the others
    sees(m1, m3, 0.0)
    sees(m3, m1, 0.0)
    restarted_with(m3, _mongo_keyfile.render([old, new]))  # both: talks to the members on the old one
    _mongo.wait_for("the set to be healthy again", lambda: _mongo.healthy(m1.address, 3))
    restarted_with(m1, new + "\n")  # m1 shares the new key with m3 only
    sees(m1, m3, 1.0)
    sees(m1, m2, 0.0)
    sees(m2, m1, 0.0)


def rotate(rs: ReplicaSet, new: str) -> None:
    """The deploy's two `_serial` operations, step by step (restart_with_keyfile), for every member in turn:
    a process restart stands for `systemctl restart mongod`."""
    rotations = {m.name: _mongo_keyfile.plan(keys_of(m), new, running=True) for m in rs.members}
    for pass_ in ("both", "alone"):
        for m in rs.members:
            rotation = rotations[m.name]
            assert rotation is not None
            text = _mongo_keyfile.render(rotation.both) if pass_ == "both" and rotation.both else None
            if pass_ == "alone" and rotation.alone:
                text = new + "\n"
            if text is None:
                continue
            _mongo_keyfile.set_healthy(m.address)
            _mongo.step_down_if_primary(m.address)
            restarted_with(m, text)
            _mongo.back_in_set(m.address)


def test_every_member_moves_to_the_new_key_with_no_acknowledged_write_lost(replica_set: ReplicaSet):
    (old,) = keys_of(replica_set.members[0])
    new = secrets.token_hex(32)
    with writing(replica_set.uri) as writer:
        rotate(replica_set, new)
    assert set(writer.acked) <= writer.stored(), "an acknowledged write was lost"
    windows = error_windows(writer.errors)
    assert len(windows) <= 4 and all(w < 10 for w in windows), writer.errors  # around the stepdowns only
    assert all(keys_of(m) == [new] for m in replica_set.members)
    assert _mongo.healthy(replica_set.members[0].address, 3)
    m1, m2, _m3 = replica_set.members
    restarted_with(m2, old + "\n")  # the old key alone no longer lets a member in
    sees(m1, m2, 0.0)

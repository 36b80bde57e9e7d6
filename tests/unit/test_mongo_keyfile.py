"""The MongoDB keyfile rotation's plan (deploys/_mongo_keyfile.py): keyfiles read and written as mongod reads
them, each member's two passes, and, simulated over a whole set, that no two members ever stop sharing a key
while every member ends on the new key alone."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys import _mongo_keyfile as keys

OLD, NEW, OTHER = "b2xkIGtleQ" * 3, "bmV3IGtleQ" * 3, "b3RoZXIga2V5" * 3
STANDIN = Path(__file__).resolve().parents[1] / "standins" / "mongod.py"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OLD + "\n", [OLD]),
        (f"{OLD[:10]}\n  {OLD[10:]}\n", [OLD]),  # openssl rand -base64 wraps its lines: one key
        (f"- {OLD}\n- {NEW}\n", [OLD, NEW]),
        (f"- '{OLD}'\n- \"{NEW}\"\n", [OLD, NEW]),
        (f"# rotated\n- {OLD}\n\n- {OLD}\n", [OLD]),
        ("\n", []),
    ],
    ids=["one", "wrapped", "sequence", "quoted", "comment-and-repeat", "empty"],
)
def test_a_keyfile_is_read_as_mongod_reads_it(text, expected):
    assert keys.parse(text) == expected


def test_several_keys_are_written_so_that_both_readers_read_them_back(tmp_path):
    """The deploy's reader and the lab stand-in's (tests/standins/mongod.py) agree on what render writes."""
    spec = importlib.util.spec_from_file_location("standin_mongod", STANDIN)
    assert spec and spec.loader
    standin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standin)
    odd = "it's+/="  # a quote survives the YAML quoting (not a key mongod accepts; the format's own edge)
    text = keys.render([OLD, NEW, odd])
    assert text == f"- '{OLD}'\n- '{NEW}'\n- 'it''s+/='\n"
    assert keys.parse(text) == [OLD, NEW, odd]
    (tmp_path / "keyfile").write_text(text)
    assert standin.keyfile_keys(str(tmp_path / "keyfile")) == [OLD, NEW, odd]


@pytest.mark.parametrize("value", ["short", "a-key_from-token-urlsafe", "x" * 1025, "key: value"])
def test_a_key_mongod_would_refuse_is_refused_without_showing_it(value):
    with pytest.raises(RuntimeError) as refused:
        keys.checked(value, "OPSRUN_MONGO_KEYFILE")
    message = str(refused.value)
    assert message.startswith("the keyfile key from OPSRUN_MONGO_KEYFILE (mongo_replicaset_auth.secret_env.keyfile)")
    assert "Nothing was changed. Fix: " in message and value not in message


def test_a_key_is_taken_whitespace_aside():
    assert keys.checked(f"{NEW[:8]}\n{NEW[8:]}\n", "X") == NEW


@pytest.mark.parametrize(
    ("on_disk", "running", "expected"),
    [
        (None, True, None),  # no keyfile yet: written with the new key
        ([OLD], False, None),  # mongod not running: it starts with the new key
        ([NEW], True, keys.Rotation(None, alone=False)),  # nothing to do
        ([OLD], True, keys.Rotation([OLD, NEW], alone=True)),  # both, then the new one alone
        ([OLD, NEW], True, keys.Rotation(None, alone=True)),  # a rotation that stopped after pass 1 here
        ([NEW, OLD], True, keys.Rotation(None, alone=True)),
        ([OLD, OTHER], True, keys.Rotation([OLD, OTHER, NEW], alone=True)),  # every key it holds is kept
    ],
)
def test_each_member_gets_both_keys_unless_it_holds_the_new_one_then_the_new_one_alone(on_disk, running, expected):
    assert keys.plan(on_disk, NEW, running) == expected


def shares_a_key(running: dict[str, set[str]]) -> bool:
    return all(running[a] & running[b] for a, b in itertools.combinations(running, 2))


def rotate(start: dict[str, list[str]]) -> list[dict[str, set[str]]]:
    """What the set runs after each restart of the deploy's two `_serial` operations (pass 1 on every
    member in turn, then pass 2), each member planned from its own keyfile."""
    running = {m: set(k) for m, k in start.items()}
    plans = {m: keys.plan(k, NEW, running=True) for m, k in start.items()}
    seen = [dict(running)]
    for member, rotation in plans.items():
        if rotation is not None and rotation.both:
            running[member] = set(rotation.both)
            seen.append(dict(running))
    for member, rotation in plans.items():
        if rotation is not None and rotation.alone:
            running[member] = {NEW}
            seen.append(dict(running))
    return seen


@pytest.mark.parametrize(
    "start",
    [
        {"web1": [OLD], "web2": [OLD], "web3": [OLD]},
        {"web1": [OLD, NEW], "web2": [OLD], "web3": [OLD]},  # the last run stopped after web1's pass 1
        {"web1": [OLD, NEW], "web2": [OLD, NEW], "web3": [NEW]},  # ... or after web3's pass 2
        {"web1": [OLD, OTHER], "web2": [OTHER], "web3": [OLD, OTHER]},  # an earlier rotation half done
        {"web1": [OLD], "web2": [OLD], "web3": [OLD], "web4": [OLD], "web5": [OLD]},
    ],
    ids=["from-one-key", "stopped-in-pass-1", "stopped-in-pass-2", "two-old-keys", "five-members"],
)
def test_no_two_members_ever_stop_sharing_a_key_and_all_end_on_the_new_one(start):
    steps = rotate(start)
    assert all(shares_a_key(s) for s in steps), steps
    assert steps[-1] == {m: {NEW} for m in start}
    restarted = sum(1 for k in start.values() if NEW not in k) + sum(1 for k in start.values() if k != [NEW])
    assert len(steps) - 1 == restarted  # one restart per pass a member needs, no more


def test_a_member_on_the_new_key_alone_among_members_on_the_old_would_split_the_set():
    """Why pass 2 waits for every member to finish pass 1 (the guard tested below)."""
    assert not shares_a_key({"web1": {NEW}, "web2": {OLD}, "web3": {OLD, NEW}})


def fake_host(monkeypatch, here: list[str], failed: list[str] = ()) -> SimpleNamespace:
    members = [{"inventory_host": h} for h in ("web1", "web2", "web3")]
    monkeypatch.setattr(keys, "members", lambda: members)
    state = SimpleNamespace(
        activated_hosts=[SimpleNamespace(name=h) for h in here],
        failed_hosts=[SimpleNamespace(name=h) for h in failed],
    )
    fake = SimpleNamespace(name=here[0], state=state)
    monkeypatch.setattr(keys, "host", fake)
    return fake


def test_a_rotation_is_refused_unless_every_member_is_in_the_batch(monkeypatch):
    fake_host(monkeypatch, ["web1"])
    with pytest.raises(RuntimeError) as refused:
        keys.every_member_here()
    assert "web2, web3 are not in this run's batch. Nothing was changed." in str(refused.value)
    assert str(refused.value).endswith("every member in one batch, every one reachable: --serial 100% (and no --limit)")
    fake_host(monkeypatch, ["web1", "web2", "web3"])
    keys.every_member_here()


def test_pass_2_starts_on_no_member_when_one_failed_pass_1(monkeypatch):
    fake = fake_host(monkeypatch, ["web1", "web2", "web3"], failed=["web2"])
    with pytest.raises(RuntimeError, match=r"^web2 failed in this run: no other member is moved to the new key alone"):
        keys.first_pass_done(fake.state, fake, ["web1", "web2", "web3"])
    fine = fake_host(monkeypatch, ["web1", "web2", "web3"])
    keys.first_pass_done(fine.state, fine, ["web1", "web2", "web3"])

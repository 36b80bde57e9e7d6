"""deploys/mongo_replicaset.py's keyfile rotation through pyinfra's own CLI: three `@fake` hosts (pyinfra's
connector that runs no command: facts come from scripted answers) whose members are the stand-in replica
set on loopback (tests/mongo/conftest.py). So the deploy plans the rotation from the hosts' facts, pyinfra
runs its operations in their order (both passes, each over every member in turn), and the controller's own
steps (set healthy before each member, a primary stepped down, the set healthy after) run against live
members; the file uploads and `systemctl restart mongod` go nowhere (tests/mongo/test_keyfile_rotation.py
restarts real processes; tests/lab/test_mongo_keyfile_rotation.py does all of it on hosts)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from deploys import _mongo
from tests.conftest import copy_ops
from tests.mongo.conftest import ReplicaSet

PYINFRA = Path(sys.executable).with_name("pyinfra")
BOTH = "Keyfile with the old and the new key (members restarted one at a time)"
ALONE = "Keyfile with the new key alone (members restarted one at a time)"


def fake_inventory(rs: ReplicaSet, old: str) -> str:
    """The mongo group as @fake hosts: mongod installed and running, the keyfile holding `old`."""
    answers = {
        "command -v mongod": "/usr/local/bin/mongod",
        "--property SubState mongod": ["Id=mongod.service", "SubState=running"],
        "cat /etc/mongod.keyfile": old,
    }
    data = {"ssh_hostname": "127.0.0.1", "mongo_replicaset_install": "present", "fake_responses": answers}
    hosts = [(f"@fake/{m.name}", {**data, "mongo_replicaset_port": m.port}) for m in rs.members]
    return f"mongo = {hosts!r}\n"


def term(rs: ReplicaSet) -> int:
    """The set's election term: it grows by one with each stepdown."""
    with _mongo.client(rs.members[0].address) as c:
        return int(c.admin.command("replSetGetStatus")["term"])


def pyinfra(ops: Path, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYINFRA_FAKE_DELAY": "0", "PYINFRA_FAKE_DELAY_JITTER": "0", "OPSRUN_MONGO_KEYFILE": key}
    return subprocess.run(
        [str(PYINFRA), "inventories/fake.py", "deploys/mongo_replicaset.py", "-y", *args],
        cwd=ops, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_both_passes_run_over_every_member_in_turn_with_the_set_checked(replica_set, tmp_path):
    old, new = replica_set.members[0].keyfile.read_text().strip(), secrets.token_hex(32)
    ops = copy_ops(tmp_path / "ops")
    (ops / "inventories" / "fake.py").write_text(fake_inventory(replica_set, old))
    before = term(replica_set)
    run = pyinfra(ops, new)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    starts = [output.index(f"Starting serial operation: {name}") for name in (BOTH, ALONE)]
    successes = [m.start() for m in re.finditer(r"\[@fake/m\d\] (Success|No changes)", output)]
    between = [s for s in successes if starts[0] < s < starts[1]]
    assert len(between) == 3, output[starts[0] : starts[1]]  # pass 1 done on every member before pass 2
    assert new not in output and old not in output
    assert term(replica_set) >= before + 2  # each pass stepped the primary of the moment down before its restart
    assert _mongo.healthy(replica_set.members[0].address, 3)


def test_a_rotation_without_every_member_in_the_run_is_refused(replica_set, tmp_path):
    old, new = replica_set.members[0].keyfile.read_text().strip(), secrets.token_hex(32)
    ops = copy_ops(tmp_path / "ops")
    (ops / "inventories" / "fake.py").write_text(fake_inventory(replica_set, old))
    run = pyinfra(ops, new, "--limit", "@fake/m1")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "@fake/m2, @fake/m3 are not in this run's batch. Nothing was changed." in output, output[-4000:]
    assert "--serial 100% (and no --limit)" in output
    assert BOTH not in output
    assert new not in output and old not in output

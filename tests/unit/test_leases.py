"""The lease shell, run by a real sh against a folder here: taken, held by another run, renewed, expired and
taken over, a dead run of the same store taken over, released only by its owner, values that cannot inject."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from opsrun.hosts.leases import LeaseAnswer, LeaseRequest, parse, script


def lease(tmp_path: Path, req: LeaseRequest) -> LeaseAnswer:
    proc = subprocess.run(["sh", "-c", script(req, str(tmp_path))], capture_output=True, text=True, check=True)
    return parse(proc.stdout, req.owner)


def mine(owner: str = "s1:1", **kw) -> LeaseRequest:
    return LeaseRequest("acquire", owner, "ops@ctl", **kw)


def test_a_free_host_is_leased_to_the_run(tmp_path):
    answer = lease(tmp_path, mine())
    assert answer == LeaseAnswer(True, now=answer.now)
    expiry, owner, holder = (tmp_path / "lease").read_text().split()
    assert (owner, holder) == ("s1:1", "ops@ctl") and int(expiry) > time.time() + 290


def test_a_live_lease_of_another_store_refuses_and_names_its_holder(tmp_path):
    lease(tmp_path, LeaseRequest("acquire", "s2:9", "bob@other"))
    answer = lease(tmp_path, mine(store="s1"))
    assert not answer.taken and (answer.previous_owner, answer.previous_holder) == ("s2:9", "bob@other")
    assert (tmp_path / "lease").read_text().split()[1] == "s2:9"


def test_the_owner_renews_its_own_lease(tmp_path):
    lease(tmp_path, mine(ttl=10))
    answer = lease(tmp_path, mine(ttl=600))
    assert answer.taken and not answer.took_over
    assert int((tmp_path / "lease").read_text().split()[0]) > time.time() + 590


def test_an_expired_lease_is_taken_over_and_said(tmp_path):
    (tmp_path / "lease").write_text("1000 s2:9 bob@other\n")
    answer = lease(tmp_path, mine())
    assert answer.took_over and answer.previous_owner == "s2:9"
    assert answer.describe() == "bob@other (run s2:9), until 1970-01-01T00:16:40Z"


def test_a_dead_run_of_the_same_store_is_taken_over_a_live_one_is_not(tmp_path):
    lease(tmp_path, LeaseRequest("acquire", "s1:7", "ops@ctl"))
    assert not lease(tmp_path, mine("s1:8", store="s1", live=("s1:7",))).taken
    answer = lease(tmp_path, mine("s1:8", store="s1", live=()))
    assert answer.took_over and answer.previous_owner == "s1:7"


def test_release_removes_only_the_owners_lease(tmp_path):
    lease(tmp_path, mine())
    lease(tmp_path, LeaseRequest("release", "s3:3", "x@y"))
    assert (tmp_path / "lease").exists()
    lease(tmp_path, LeaseRequest("release", "s1:1", "ops@ctl"))
    assert not (tmp_path / "lease").exists()


def test_a_garbage_lease_file_counts_as_expired(tmp_path):
    (tmp_path / "lease").write_text("soon; rm -rf / \n")
    assert lease(tmp_path, mine()).took_over


def test_values_that_would_inject_stay_words(tmp_path):
    marker = tmp_path / "injected"
    req = LeaseRequest(
        "acquire", f"s1:1;touch {marker}", f"$(touch {marker}) `touch {marker}`", store=f"'; touch {marker}"
    )
    assert lease(tmp_path, req).taken
    assert not marker.exists()
    assert len((tmp_path / "lease").read_text().split()) == 3

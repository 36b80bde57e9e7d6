"""Rollback planning from recorded runs (opsrun.rollout.rollback): which revision, which hosts, newest changed
first, from which revision, and the package versions to go back to."""

from __future__ import annotations

import pytest

from opsrun.errors import ConfigError
from opsrun.model.results import DeployRun, HostOutcome, HostRun, OperationResult, RolloutRun
from opsrun.rollout.rollback import Applied, changed_newest_first, choose, downgrades, target

A, B, C = "a" * 40, "b" * 40, "c" * 40
HOSTS = ["web1", "web2", "web3"]


def host(batch: int, changed: int = 1, outcome: str = "done", stage: str | None = None, upgrades=()) -> dict:
    return {"batch": batch, "outcome": outcome, "stage": stage, "changed": changed, "upgrades": list(upgrades)}


def rollout_doc(**hosts: dict) -> dict:
    return {"kind": "rollout", "hosts": hosts}


def applied(run_id: int, revision: str | None, status: str = "success", doc: dict | None = None) -> Applied:
    doc = doc if doc is not None else rollout_doc(web1=host(1), web2=host(2), web3=host(3))
    return Applied.of(run_id, revision, status, doc)


def plan(history: list[Applied], **kwargs) -> tuple[Applied | None, list[str], dict]:
    run, later = choose(history, where="store", **kwargs)
    way = target(kwargs.get("revision") or (run.revision if run else ""), run, later, HOSTS)
    return run, way.hosts, way.came_from


def test_the_default_goes_back_to_the_last_success_before_the_newest_change_newest_host_first():
    history = [applied(7, B), applied(6, A)]
    run, hosts, came_from = plan(history)
    assert run is not None and (run.run_id, run.revision) == (6, A)
    assert hosts == ["web3", "web2", "web1"]
    assert came_from == dict.fromkeys(hosts, B)


def test_a_halted_run_sends_back_its_failed_host_first_and_leaves_the_unreached_one():
    halted = rollout_doc(
        web1=host(1), web2=host(2, changed=0, outcome="failed", stage="health"), web3=host(3, 0, "not_reached")
    )
    run, hosts, _ = plan([applied(7, B, "failed", halted), applied(6, A)])
    assert run is not None and run.run_id == 6
    assert hosts == ["web2", "web1"]


def test_a_host_that_failed_before_anything_ran_was_not_changed():
    doc = rollout_doc(web1=host(1), web2=host(2, 0, "failed", "connect"), web3=host(2, 0, "failed", "drain"))
    assert applied(7, B, "failed", doc).changed == ("web1",)


def test_a_later_run_that_changed_nothing_is_not_the_change_to_undo():
    noop = rollout_doc(web1=host(1, 0), web2=host(2, 0), web3=host(3, 0))
    run, hosts, came_from = plan([applied(8, B, doc=noop), applied(7, B), applied(6, A)])
    assert run is not None and run.run_id == 6
    assert came_from == dict.fromkeys(hosts, B)


def test_a_rollback_run_is_never_the_change_to_undo_so_rolling_back_twice_goes_to_the_same_place():
    rolled_back = rollout_doc(web1=host(1), web2=host(2), web3=host(3))
    rolled_back["plan"] = {"batches": [["web3"], ["web2"], ["web1"]], "rollback_to": A}
    history = [applied(8, A, doc=rolled_back), applied(7, B), applied(6, A)]
    assert history[0].rollback
    run, _hosts, came_from = plan(history)
    assert run is not None and run.run_id == 6
    assert came_from == {"web1": A, "web2": A, "web3": A}  # the rollback run is the newest to change them


def test_a_patch_under_the_same_revision_is_undone_by_going_back_to_the_run_before():
    patched = rollout_doc(
        web1=host(1, upgrades=[{"package": "opsrun-demo", "from": "1.0", "to": "1.1"}]),
        web2=host(2, upgrades=[{"package": "opsrun-demo", "from": "1.0", "to": "1.1"}]),
        web3=host(3, 0),
    )
    history = [applied(7, A, doc=patched), applied(6, A)]
    run, later = choose(history, where="store")
    assert run is not None and run.run_id == 6
    way = target(A, run, later, HOSTS)
    assert way.hosts == ["web2", "web1"]
    assert way.downgrades == {"web2": {"opsrun-demo": "1.0"}, "web1": {"opsrun-demo": "1.0"}}
    assert way.plan_lines() == [
        f"rollback to revision {A[:12]} (run 6): 2 host(s), newest changed first",
        f"  web2: from {A[:12]} (run 7); opsrun-demo back to 1.0",
        f"  web1: from {A[:12]} (run 7); opsrun-demo back to 1.0",
    ]


def test_the_version_to_go_back_to_is_the_one_before_the_first_later_upgrade():
    first = applied(7, A, doc=rollout_doc(web1=host(1, upgrades=[{"package": "pkg", "from": "1.0", "to": "1.1"}])))
    second = applied(8, A, doc=rollout_doc(web1=host(1, upgrades=[{"package": "pkg", "from": "1.1", "to": "1.2"}])))
    assert downgrades([second, first], ["web1"]) == {"web1": {"pkg": "1.0"}}


def test_a_recorded_version_that_is_not_a_debian_version_is_refused():
    upgrade = {"package": "pkg", "from": "1.0; rm -rf /", "to": "2"}
    bad = applied(7, A, doc=rollout_doc(web1=host(1, upgrades=[upgrade])))
    with pytest.raises(ConfigError, match="not Debian names and versions"):
        downgrades([bad], ["web1"])


def test_to_a_named_run_takes_every_host_changed_after_it():
    history = [applied(9, C), applied(8, B, doc=rollout_doc(web1=host(1))), applied(7, A)]
    run, hosts, came_from = plan(history, to_run=7)
    assert run is not None and run.run_id == 7
    assert hosts == ["web3", "web2", "web1"] and came_from["web1"] == C


def test_a_revision_no_run_recorded_takes_every_host():
    history = [applied(8, B, doc=rollout_doc(web2=host(1))), applied(7, A, doc=rollout_doc(web3=host(1)))]
    run, hosts, came_from = plan(history, revision=C)
    assert run is None
    assert hosts == ["web2", "web3", "web1"] and came_from == {"web2": B, "web3": A}
    lines = target(C, None, history, HOSTS).plan_lines()
    assert lines[0] == f"rollback to revision {C[:12]}: 3 host(s), newest changed first"
    assert lines[1:] == [
        f"  web2: from {B[:12]} (run 8)",
        f"  web3: from {A[:12]} (run 7)",
        "  web1: no recorded run changed it",
    ]


def test_a_dirty_recorded_revision_is_matched_by_its_snapshot_commit():
    history = [applied(8, B), applied(7, f"{A}+dirty")]
    run, _hosts, _ = plan(history, revision=A)
    assert run is not None and run.run_id == 7


@pytest.mark.parametrize(
    ("history", "kwargs", "message"),
    [
        ([], {}, "no recorded apply of this deploy on this inventory changed a host"),
        ([applied(7, B)], {}, "no successful apply with a recorded revision before run 7"),
        ([applied(7, B), applied(6, A, "failed")], {}, "no successful apply with a recorded revision before run 7"),
        ([applied(7, B)], {"to_run": 5}, "no apply of this deploy on this inventory is run 5"),
        ([applied(7, None)], {"to_run": 7}, "run 7 recorded no revision"),
    ],
)
def test_nothing_to_go_back_to_is_refused(history, kwargs, message):
    with pytest.raises(ConfigError) as caught:
        choose(history, where="store", **kwargs)
    assert caught.value.exit_code == 2 and message in str(caught.value)


def test_a_parallel_apply_and_a_dead_runs_record_are_read_too():
    parallel = {"kind": "apply", "hosts": {
        "web1": {"status": "changed", "changed": 2, "upgrades": [], "operations": [{}]},
        "web2": {"status": "ok", "changed": 0, "upgrades": [], "operations": [{}]},
        "web3": {"status": "failed", "changed": 0, "upgrades": [], "operations": [{"success": False}]},
    }}  # fmt: skip
    assert applied(5, A, doc=parallel).changed == ("web1", "web3")
    dead = {"hosts": {"web1": {"outcome": "done", "stage": None, "batch": 1}, "web2": {"outcome": "not_reached"}}}
    assert applied(6, A, "interrupted", dead).changed == ("web1",)


def outcome(name: str, batch: int, result: str, stage: str | None = None, changed: bool = True) -> HostOutcome:
    out = HostOutcome(name, batch, result, stage)  # type: ignore[arg-type]
    out.run = HostRun(name, [OperationResult("op", changed, result != "failed")])
    return out


def test_a_halted_rollout_goes_back_newest_first_with_its_failed_host():
    run = RolloutRun(
        "prod",
        "app",
        {},
        {},
        {
            "web1": outcome("web1", 1, "done"),
            "web2": outcome("web2", 1, "done", changed=False),
            "web3": outcome("web3", 2, "done"),
            "web4": outcome("web4", 2, "failed", "verify"),
            "web5": outcome("web5", 3, "not_reached"),
        },
    )
    assert changed_newest_first(run) == ["web4", "web3", "web1"]


def test_a_deploy_run_records_downgrades_as_upgrades_back():
    line = "Unpacking opsrun-demo (1.0) over (1.1) ..."
    run = DeployRun("prod", "patching", False, [HostRun("web1", [OperationResult("x", True, True, output=[line])])])
    assert run.hosts[0].upgrades == [{"package": "opsrun-demo", "from": "1.1", "to": "1.0"}]

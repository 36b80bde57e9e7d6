"""The demo app's bad release as the tour makes it (opsrun.lab.releases.BAD_RELEASE, a patch to
group_data/web.py): it applies to this repo's ops content, its settings pass opsrun's schemas (version 2 with
FAIL_ONE_IN=5, a canary, on_failure "rollback"), and taking it away gives the file back byte for byte; and the
bound on the requests users may see fail while its canary is judged."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from opsrun import rollout, settings
from opsrun.lab.releases import BAD_RELEASE, failed_requests_bound
from opsrun.model import inventory
from opsrun.model.project import Project
from tests.conftest import copy_ops

HOSTS = ["web1", "web2", "web3"]


@pytest.fixture
def ops(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("OPSRUN_LAB_DIR", str(tmp_path / "no-lab"))  # the inventory's default lab, not this machine's
    return copy_ops(tmp_path / "ops")


def git_apply(ops: Path, *args: str) -> None:
    subprocess.run(["git", "apply", *args, BAD_RELEASE], cwd=ops, check=True, capture_output=True)


def test_the_bad_release_ships_version_2_failing_one_in_five_with_a_canary_and_a_way_back(ops):
    git_apply(ops)
    inv = inventory.load(Project(ops), "lab")
    checked = settings.check_hosts(inv, HOSTS)  # every setting of the patched web tier passes its schema
    [app] = settings.validate_family(settings.DEPLOYS["pm2"], dict(inv.hosts["web1"].data), where=lambda k: k).apps
    assert (app.env["APP_VERSION"], app.env["FAIL_ONE_IN"]) == ("2", 5)
    assert "SLOW_MS" not in app.env and app.env["PORT"] == 3001  # the rest of the release as it was
    policy = rollout.load_policy(inv, HOSTS, checked, deploy="pm2")
    assert policy is not None and policy.on_failure == "rollback"
    assert policy.canary is not None and (policy.canary.bake, policy.canary.interval) == (30, 2)
    assert (policy.canary.error_rate, policy.canary.response_time) == (5, 1)  # the runbooks' defaults
    assert policy.plan(HOSTS).canary and policy.plan(HOSTS).batches[0] == ("web1",)
    assert policy.health is not None and policy.serial == (1,)  # the web tier's own gate and batches kept


def test_taking_the_bad_release_away_gives_the_file_back(ops):
    web = ops / "group_data" / "web.py"
    before = web.read_bytes()
    git_apply(ops)
    assert web.read_bytes() != before
    git_apply(ops, "-R")
    assert web.read_bytes() == before


def test_the_failed_requests_bound_is_the_canarys_share_of_the_traffic_over_its_bake():
    # 300 requests/s, one host in three: 100/s on the canary, one in five failing: 20/s, for 30 + 2 s
    tour = {"fail_one_in": 5, "canary_hosts": 1, "serving_hosts": 3, "bake": 30, "interval": 2}
    assert failed_requests_bound(300, **tour) == 640 + 10
    assert failed_requests_bound(300, **tour, slack=0) == 640
    assert failed_requests_bound(0, **tour) == 10
    every = {"fail_one_in": 1, "canary_hosts": 2, "serving_hosts": 2, "bake": 1, "interval": 0, "slack": 0}
    assert failed_requests_bound(12.5, **every) == 13  # rounded up


@pytest.mark.parametrize(
    "bad",
    [{"fail_one_in": 0}, {"canary_hosts": 0}, {"canary_hosts": 4}, {"rate": -1.0}, {"bake": -1.0}],
    ids=lambda d: next(iter(d)),
)
def test_the_bound_refuses_settings_that_have_none(bad):
    given = {"rate": 300.0, "fail_one_in": 5, "canary_hosts": 1, "serving_hosts": 3, "bake": 30.0, "interval": 2.0}
    given |= bad
    rate = given.pop("rate")
    with pytest.raises(ValueError, match="no bound for"):
        failed_requests_bound(rate, **given)  # type: ignore[arg-type]

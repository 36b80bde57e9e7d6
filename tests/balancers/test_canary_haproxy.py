"""The canary judged by a real HAProxy's `show stat`, under load through its frontend: the rollout's apply is
scripted (it switches the batch's servers to the new release), everything else is real: the drain, the
enable, the health checks, the statistics, the verdict, and the requests a client saw fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun.lab.loadgen import LoadGenerator
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.rollout import Policy, Rollout, StageRunners
from opsrun.settings.models import CanaryPolicy, HAProxyBalancer
from tests.balancers.conftest import HOSTS, SLOW


def rollout(backends, release: str, **canary) -> tuple[Rollout, list[list[str]]]:
    """A rollout of `release` over HOSTS behind the test's HAProxy, one host a batch, the first a canary."""
    applied: list[list[str]] = []

    def apply(project, inv, deploy, batch, **_):
        applied.append(list(batch))
        with backends.lock:
            backends.release.update(dict.fromkeys(batch, release))
        return DeployRun("lab", deploy, False, [HostRun(h, [OperationResult("release", True, True)]) for h in batch])

    inv = Inventory("lab", Path("/ops/inventories/lab.py"), HOSTS, {}, {}, {h: Host(h, (), {}) for h in HOSTS})
    limits = CanaryPolicy(**{"bake": 3, "interval": 0.25, "min_requests": 50, **canary})
    bal = backends.balancer
    policy = Policy(
        verify=False,
        reboot="never",
        drain_timeout=10,
        healthy_timeout=10,
        balancer=HAProxyBalancer(type="haproxy", socket=bal.socket_path, backend="web"),
        canary=limits,
    )
    runners = StageRunners(connect=lambda p, i, b, **k: dict.fromkeys(b), apply=apply, balancer=bal)
    return Rollout(Project(Path("/nonexistent")), inv, "app", policy, runners=runners), applied


def states(backends) -> dict[str, str]:
    return {h: backends.balancer.state(h).admin for h in HOSTS}


def test_a_release_that_fails_one_request_in_five_is_caught_within_its_bake(haproxy_backends):
    ro, applied = rollout(haproxy_backends, "errors", bake=30)
    with LoadGenerator(haproxy_backends.frontend, threads=4, max_seconds=60, max_rate=150) as load:
        result = ro.run(HOSTS)
    verdict = result.canary
    assert verdict is not None and verdict["outcome"] == "breach", verdict
    assert verdict["seconds"] < 30  # caught within its bake
    assert 15 <= verdict["canary"]["error_rate"] <= 25 and verdict["canary"]["requests"] >= 50
    assert verdict["unchanged"]["errors"] == 0 and verdict["unchanged"]["requests"] >= 50
    assert (verdict["source"], verdict["hosts"]) == ("haproxy show stat (backend web)", ["web1"])
    assert result.status == "failed" and result.halted.startswith("canary: error rate ")
    web1 = result.hosts["web1"]
    assert (web1.outcome, web1.stage, web1.in_balancer) == ("failed", "canary", False)
    assert [result.hosts[h].outcome for h in ("web2", "web3")] == ["not_reached", "not_reached"]
    assert applied == [["web1"]] and haproxy_backends.release == {"web1": "errors", "web2": "good", "web3": "good"}
    assert states(haproxy_backends) == {"web1": "drain", "web2": "ready", "web3": "ready"}
    # what users saw: the canary's errors, and no more once it was taken out (a few may land between the
    # enable and the first reading, before the window opened)
    assert verdict["canary"]["errors"] <= load.result.failures <= verdict["canary"]["errors"] + 5, load.result.errors
    assert set(load.result.errors) == {"HTTP 500"}


def test_a_slow_release_is_caught_by_its_response_time(haproxy_backends):
    ro, _applied = rollout(haproxy_backends, "slow", bake=30, response_time=SLOW / 2, min_requests=20)
    with LoadGenerator(haproxy_backends.frontend, threads=8, max_seconds=60, max_rate=150):
        result = ro.run(HOSTS)
    verdict = result.canary
    assert verdict is not None and verdict["outcome"] == "breach", verdict
    assert verdict["canary"]["response_time"] == pytest.approx(SLOW, rel=0.3)
    assert verdict["unchanged"]["response_time"] < SLOW / 2
    assert f"> {SLOW / 2:g} s over " in verdict["reason"]
    assert [h.outcome for h in result.hosts.values()] == ["failed", "not_reached", "not_reached"]


def test_a_good_release_passes_after_its_bake_and_the_rollout_goes_on(haproxy_backends):
    ro, applied = rollout(haproxy_backends, "good", bake=2)
    with LoadGenerator(haproxy_backends.frontend, threads=4, max_seconds=60, max_rate=150) as load:
        result = ro.run(HOSTS)
    assert result.status == "success", {h.name: h.reason for h in result.hosts.values()}
    verdict = result.canary
    assert verdict is not None and verdict["outcome"] == "pass" and verdict["seconds"] >= 2
    assert verdict["canary"]["errors"] == 0 and verdict["canary"]["requests"] >= 50
    assert applied == [["web1"], ["web2"], ["web3"]] and states(haproxy_backends) == dict.fromkeys(HOSTS, "ready")
    assert load.result.failures == 0, load.result.errors


def test_without_traffic_the_canary_has_no_verdict_and_fails(haproxy_backends):
    ro, applied = rollout(haproxy_backends, "good", bake=1)
    result = ro.run(HOSTS)
    assert result.canary is not None and result.canary["outcome"] == "no_verdict"
    assert result.halted == ("canary: no verdict: 0 requests in 1 s, fewer than the 50 needed"), (
        result.halted
    )  # the unchanged hosts had none either: nothing said beside
    assert applied == [["web1"]] and states(haproxy_backends)["web1"] == "drain"

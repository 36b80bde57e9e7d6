"""Verification runs many hosts at once: the same per-host results as one host at a time (a check that
fails on one host is that host's only), and never more hosts at once than --concurrency allows."""

from __future__ import annotations

import json

import pytest

from tests.conftest import opsrun_json

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]


@pytest.fixture
def web2_broken(web_tier, on_host):
    """One check fails on web2 only: the distribution's default site is back (empty, so nginx stays valid)."""
    on_host("web2", "touch /etc/nginx/sites-enabled/default")
    yield
    on_host("web2", "rm -f /etc/nginx/sites-enabled/default")


def outcomes(doc: dict, host: str) -> dict[str, str]:
    return {t["test"]: t["outcome"] for t in doc["hosts"][host]["tests"]}


def windows(doc: dict) -> dict[str, tuple[float, float]]:
    """Each host's span: from its first test's start to its last test's end."""
    spans = {}
    for host, d in doc["hosts"].items():
        tests = [t for t in d["tests"] if t["started"] is not None]
        spans[host] = (min(t["started"] for t in tests), max(t["started"] + t["seconds"] for t in tests))
    return spans


def most_at_once(spans: dict[str, tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()])
    now = peak = 0
    for _at, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_parallel_results_are_those_of_one_host_at_a_time_and_a_failure_stays_with_its_host(web2_broken):
    code, together = opsrun_json("verify", "lab", "nginx")
    assert code == 1, together
    alone = {}
    for h in HOSTS:
        _code, doc = opsrun_json("verify", "lab", "nginx", "--limit", h)
        alone[h] = outcomes(doc, h)
    assert {h: outcomes(together, h) for h in HOSTS} == alone
    failed = {h: [t for t, o in outcomes(together, h).items() if o != "passed"] for h in HOSTS}
    assert failed == {"web1": [], "web2": ["test_distribution_default_site_is_disabled"], "web3": []}


@pytest.mark.parametrize("concurrency", [1, 2])
def test_no_more_hosts_at_once_than_the_concurrency(web_tier, concurrency):
    code, doc = opsrun_json("verify", "lab", "nginx", "--concurrency", str(concurrency))
    assert code == 0, json.dumps(doc)[:2000]
    assert most_at_once(windows(doc)) <= concurrency


def test_hosts_are_verified_at_the_same_time_by_default(web_tier):
    code, doc = opsrun_json("verify", "lab", "nginx")
    assert code == 0, json.dumps(doc)[:2000]
    assert most_at_once(windows(doc)) == 3

"""The canary on the lab, under load through its HAProxy: a release of the demo app that answers /health (so it
passes every gate and the pm2 suite) but fails one request in five, or answers 1.5 s late, is caught by the
canary from HAProxy's own statistics within its bake; the rollout fails at the canary, the hosts after it
untouched, and the requests users saw fail are counted and bounded. A good release passes its canary and
the rollout goes on, pausing between batches."""

from __future__ import annotations

import math

import pytest

from opsrun.lab.loadgen import LoadGenerator
from tests.conftest import opsrun_json
from tests.lab.conftest import converge_web_tier
from tests.lab.test_rolling import HOSTS, admin_states, health_versions, web_project  # noqa: F401 - a fixture

pytestmark = pytest.mark.lab
CANARY = {"bake": 60, "interval": 2, "min_requests": 100}  # error rate 5 %, response time 1 s: the defaults


@pytest.fixture
def release(lab, haproxy, web_tier, web_project):  # noqa: F811 - the fixture imported above
    """A project whose demo app release is `version` with `env` (FAIL_ONE_IN, SLOW_MS), rolled with a canary;
    afterwards the web tier as this repo says again, every host back in HAProxy."""

    def make(version: str, canary: dict[str, object] | None = None, **env: object):
        project = web_project(version=version)
        web = project / "group_data" / "web.py"
        lines = [f'pm2_apps[0]["env"][{k!r}] = {v!r}' for k, v in env.items()]
        lines.append(f'rolling["canary"] = {dict(CANARY, **(canary or {}))!r}')
        web.write_text(web.read_text() + "".join(f"{line}\n" for line in lines))
        return project

    yield make
    converge_web_tier(lab, haproxy)


def caught(doc: dict, before: dict[str, str], on_host, haproxy, version: str) -> dict:
    """The rollout failed at its canary (web1), the other hosts untouched; the canary's verdict."""
    verdict = doc["canary"]
    assert doc["status"] == "failed" and verdict["outcome"] == "breach", verdict
    assert verdict["hosts"] == ["web1"] and verdict["seconds"] < CANARY["bake"]  # within its bake
    assert doc["halted"].startswith("canary: ")
    web1 = doc["hosts"]["web1"]
    assert (web1["outcome"], web1["stage"], web1["in_balancer"]) == ("failed", "canary", False)
    assert [doc["hosts"][h]["outcome"] for h in ("web2", "web3")] == ["not_reached", "not_reached"]
    versions = health_versions(on_host)
    assert versions["web1"] == version and (versions["web2"], versions["web3"]) == (before["web2"], before["web3"])
    assert admin_states(haproxy) == {"web1": "drain", "web2": "ready", "web3": "ready"}
    return verdict


def test_a_release_that_fails_one_request_in_five_is_caught_by_the_canary(release, frontend, on_host, haproxy):
    before = health_versions(on_host)
    project = release("fails-1-in-5", FAIL_ONE_IN=5)
    with LoadGenerator(frontend, threads=8, max_seconds=240) as load:
        code, doc = opsrun_json("apply", "lab", "pm2", project=project)
    assert code == 1, doc
    verdict = caught(doc, before, on_host, haproxy, "fails-1-in-5")
    assert 15 <= verdict["canary"]["error_rate"] <= 25 and verdict["canary"]["requests"] >= CANARY["min_requests"]
    assert verdict["unchanged"]["errors"] == 0
    assert doc["halted"].startswith("canary: error rate ") and " > 5 % over " in doc["halted"]
    # What users saw: the failures are the canary's (its own errors, and a few before its first reading),
    # bounded by its one fifth of its share (one host in three) of the traffic over the time it was judged.
    assert load.result.failures >= verdict["canary"]["errors"] > 0, load.result.errors
    assert set(load.result.errors) == {"HTTP 500"}, load.result.errors
    bound = math.ceil(0.2 * load.result.rate / 3 * (verdict["seconds"] + CANARY["interval"])) + 10
    assert load.result.failures <= bound, (load.result, verdict)


def test_a_slow_release_is_caught_by_its_response_time(release, frontend, on_host, haproxy):
    before = health_versions(on_host)
    project = release("slow", {"min_requests": 30}, SLOW_MS=1500)
    with LoadGenerator(frontend, threads=16, max_seconds=240) as load:
        code, doc = opsrun_json("apply", "lab", "pm2", project=project)
    assert code == 1, doc
    verdict = caught(doc, before, on_host, haproxy, "slow")
    assert verdict["canary"]["response_time"] >= 1.4 and verdict["unchanged"]["response_time"] < 1
    assert " > 1 s over " in doc["halted"]
    assert load.result.failures == 0, load.result.errors  # slow, not failed: the response time caught it


def test_a_good_release_passes_its_canary_and_pauses_between_batches(release, frontend, on_host, haproxy):
    project = release("good-canary", {"bake": 10})
    web = project / "group_data" / "web.py"
    web.write_text(web.read_text() + 'rolling["pause"] = 3\n')
    with LoadGenerator(frontend, threads=8, max_seconds=240) as load:
        code, doc = opsrun_json("apply", "lab", "pm2", project=project)
    assert code == 0, doc
    verdict = doc["canary"]
    assert verdict["outcome"] == "pass" and verdict["seconds"] >= 10 and verdict["canary"]["errors"] == 0
    assert doc["policy"]["pause"] == 3 and doc["plan"]["canary"] == ["web1"]
    assert doc["stage_seconds"]["pause"] >= 2 * 3  # a pause before each batch after the first
    assert health_versions(on_host) == dict.fromkeys(HOSTS, "good-canary")
    assert admin_states(haproxy) == dict.fromkeys(HOSTS, "ready")
    assert load.result.failures == 0, load.result.errors

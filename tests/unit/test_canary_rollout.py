"""The canary in the rollout, with the fake balancer's scripted statistics: a breach fails the canary batch
and halts, too few requests is no verdict, a pass lets the rollout go on, a stop ends the bake; the pause
between batches; the settings, refused before any host is touched (the real balancers:
tests/balancers/test_canary_haproxy.py, tests/aws/test_canary_elbv2.py)."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest

from opsrun.balancers.fake import FakeBalancer
from opsrun.balancers.stats import Figures
from opsrun.errors import ConfigError
from opsrun.rollout import Policy
from opsrun.settings.models import CanaryPolicy
from tests.unit.test_bad_input import add, assert_refused, run
from tests.unit.test_rollout_executor import HOSTS, Script, inventory, load_policy, outcomes, rollout


class Traffic:
    """A server's requests so far, `per_read` more at each read; `share` of them failed on `failing` servers."""

    def __init__(self, *, failing=(), per_read=50, share=0.2, seconds=0.01, on_read=None):
        self.failing, self.per_read, self.share, self.seconds = set(failing), per_read, share, seconds
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.reads = 0
        self.on_read = on_read

    def __call__(self, server: str) -> Figures:
        self.reads += 1
        if self.on_read:
            self.on_read(self.reads)
        count = self.counts[server]
        count[0] += self.per_read
        count[1] += int(self.per_read * self.share) if server in self.failing else 0
        return Figures(count[0], count[1], self.seconds)


def policy(**canary) -> Policy:
    limits = CanaryPolicy(**{"bake": 0.3, "interval": 0.02, "min_requests": 100, **canary})
    return Policy(serial=(1,), drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never", canary=limits)


def test_a_breach_fails_the_canary_batch_and_halts_before_the_next():
    bal = FakeBalancer(HOSTS, served=Traffic(failing={"web1"}))
    script = Script()
    result = rollout(script, bal, policy(bake=30)).run(HOSTS)
    assert result.status == "failed" and result.exit_code == 1
    assert outcomes(result) == {
        "web1": ("failed", "canary", False),
        "web2": ("not_reached", None, True),
        "web3": ("not_reached", None, True),
        "web4": ("not_reached", None, True),
    }
    assert script.applied == [["web1"]] and bal.admin["web1"] == "drain"
    assert result.halted is not None and result.halted.startswith("canary: error rate 20.0 % > 5 % over 100 requests")
    assert "; unchanged hosts: error rate 0.0 %, response time 0.010 s over 300 requests" in result.halted
    assert result.halted == f"canary: {result.hosts['web1'].reason}"
    doc = result.to_dict()["canary"]
    assert (doc["outcome"], doc["hosts"], doc["source"]) == ("breach", ["web1"], "fake statistics")
    assert doc["canary"] == {"requests": 100, "errors": 20, "error_rate": 20.0, "response_time": 0.01}
    assert doc["seconds"] < 30  # judged as soon as the figures said so, not at the end of the bake


def test_a_pass_lets_the_rollout_go_on():
    bal = FakeBalancer(HOSTS, served=Traffic())
    result = rollout(Script(), bal, policy()).run(HOSTS)
    assert result.status == "success", outcomes(result)
    assert result.canary is not None and result.canary["outcome"] == "pass"
    assert result.canary["reason"].startswith("passed: error rate 0.0 % (at most 5 %), response time 0.010 s")
    assert result.canary["seconds"] >= 0.3 and result.stage_seconds["canary"] >= 0.3  # the whole bake
    assert [c for c in bal.calls if c[0] == "stats"] == [("stats", "web1")]  # only the first batch is baked
    assert result.hosts["web1"].stage is None


def test_too_few_requests_bakes_to_the_end_and_fails_as_no_verdict():
    bal = FakeBalancer(HOSTS, served=Traffic(per_read=1))
    result = rollout(Script(), bal, policy()).run(HOSTS)
    assert result.status == "failed"
    assert outcomes(result)["web1"] == ("failed", "canary", False)
    assert result.halted is not None and result.halted.startswith("canary: no verdict: ")
    assert "fewer than the 100 needed" in result.halted
    assert result.canary is not None and result.canary["outcome"] == "no_verdict"
    assert result.canary["seconds"] >= 0.3


def test_a_stop_request_ends_the_bake_and_leaves_the_canary_in():
    stop = threading.Event()
    bal = FakeBalancer(HOSTS, served=Traffic(per_read=1, on_read=lambda n: stop.set() if n > 6 else None))
    result = rollout(Script(), bal, policy(bake=60), stop=stop).run(HOSTS)
    assert result.interrupted and result.exit_code == 130
    assert outcomes(result)["web1"] == ("done", None, True) and outcomes(result)["web2"][0] == "not_reached"
    assert result.canary is not None and result.canary["outcome"] == "interrupted"
    assert result.canary["seconds"] < 60


def test_canary_hosts_bake_alone_then_the_rest_goes_by_serial():
    bal = FakeBalancer(HOSTS, served=Traffic())
    script = Script()
    result = rollout(script, bal, policy(hosts=2)).run(HOSTS)
    assert result.status == "success"
    assert script.applied == [["web1", "web2"], ["web3"], ["web4"]]
    assert result.plan["canary"] == ["web1", "web2"] and result.canary["hosts"] == ["web1", "web2"]


def test_pause_waits_between_batches_and_a_stop_ends_it():
    stop = threading.Event()
    seen: list[tuple[int, str, str]] = []

    def events(batch, host, stage):
        seen.append((batch, host, stage))
        if stage == "pause":
            stop.set()

    pausing = Policy(serial=(1,), drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never", pause=600)
    ro = rollout(Script(), FakeBalancer(HOSTS), pausing, stop=stop)
    ro.events = events
    result = ro.run(HOSTS)
    assert (2, "web2", "pause") in seen and result.interrupted and "pause" in result.stage_seconds
    assert [outcomes(result)[h][0] for h in HOSTS] == ["done", "not_reached", "not_reached", "not_reached"]
    assert result.seconds < 600  # the stop ended the pause


def test_a_canary_batch_over_the_failure_budget_is_not_baked():
    bal = FakeBalancer(HOSTS, served=Traffic())
    canary = CanaryPolicy(bake=60, interval=0.02, min_requests=100)
    two = Policy(serial=(2,), drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never", canary=canary)
    result = rollout(Script(apply_fails={"web2"}), bal, two).run(HOSTS)
    assert result.halted == "1 failed host(s), over the failure budget of 0" and result.canary is None
    assert ("stats", "web1") not in bal.calls and outcomes(result)["web1"] == ("done", None, True)


def test_a_balancer_without_statistics_is_refused_before_any_host():
    class NoStatistics(FakeBalancer):
        stats_window = None

    script = Script()
    with pytest.raises(ConfigError, match=r"rolling\.canary: a canary is judged from the balancer's per-server"):
        rollout(script, NoStatistics(HOSTS), policy()).run(HOSTS)
    assert script.applied == []


def test_the_summary_and_the_reports_give_the_verdict_with_its_figures():
    from rich.console import Console

    from opsrun.reports import as_markdown, as_text
    from opsrun.reports.model import from_document

    result = rollout(Script(), FakeBalancer(HOSTS, served=Traffic(failing={"web1"})), policy(bake=30)).run(HOSTS)
    console = Console(record=True, width=200)
    as_text.rollout_run(result, console)
    text = console.export_text()
    line = "canary web1 (fake statistics): failed: error rate 20.0 % > 5 % over 100 requests in 0 s; unchanged hosts"
    assert line in text
    assert "web1: failed at canary: error rate 20.0 % > 5 % over 100 requests" in text
    assert "halted: canary: error rate 20.0 % > 5 %" in text
    assert "failed: 0 of 4 hosts done" in text
    assert f"- {line}" in as_markdown.render(from_document(result.to_dict()))


# ------------------------------------------------------------------------------------------- settings


def test_canary_and_pause_from_group_data():
    got = load_policy(inventory({"rolling": {"canary": {"bake": 60}, "pause": 5}, "balancer": HAPROXY}), HOSTS)
    assert got is not None and got.pause == 5.0
    assert got.canary == CanaryPolicy(bake=60)
    assert got.to_dict()["canary"]["error_rate"] == 5.0


HAPROXY = {"type": "haproxy", "socket": "/run/haproxy.sock", "backend": "web"}


@pytest.mark.parametrize(
    ("rolling", "message"),
    [
        ({"canary": {"error_rate": 0}}, "rolling.canary.error_rate: Input should be greater than 0"),
        ({"canary": {"error_rate": "5%"}}, "rolling.canary.error_rate: Input should be a valid number"),
        ({"canary": {"bake": -1}}, "rolling.canary.bake: Input should be greater than 0"),
        ({"canary": {"min_requests": 0}}, "rolling.canary.min_requests: Input should be greater than or equal to 1"),
        ({"canary": {"hosts": "all"}}, "rolling.canary.hosts: Input should be a valid integer"),
        ({"canary": {"bake": 10, "interval": 30}}, "rolling.canary: interval (30s) is longer than the bake (10s)"),
        ({"canary": {"bake_time": 10}}, "rolling.canary.bake_time: unknown setting. Fix: remove it, or use one of:"),
        ({"pause": -1}, "rolling.pause: Input should be greater than or equal to 0"),
    ],
)
def test_bad_canary_settings_name_the_file_field_and_fix(rolling, message):
    with pytest.raises(ConfigError) as err:
        load_policy(inventory({"rolling": rolling, "balancer": HAPROXY}), HOSTS)
    assert str(err.value).startswith(f"/ops/group_data/web.py: {message}")
    assert " Fix: " in str(err.value)


def test_a_canary_behind_nginx_is_refused_saying_it_keeps_no_statistics():
    nginx = {"type": "nginx", "host": "web1", "upstream": "app", "config": "/etc/nginx/conf.d/lb.conf"}
    with pytest.raises(ConfigError) as err:
        load_policy(inventory({"rolling": {"canary": {}}, "balancer": nginx}), HOSTS)
    assert str(err.value) == (
        "/ops/group_data/web.py: rolling.canary: a canary is judged from the balancer's per-server statistics, "
        "and open source nginx keeps no per-server statistics of the requests it passes (no 5xx count, no "
        "response time per upstream server). Fix: remove canary (a rolling apply without it), or put the hosts "
        "behind a haproxy or elbv2 balancer"
    )


def test_a_canary_without_a_balancer_is_refused():
    with pytest.raises(ConfigError, match=r"rolling\.canary: .* and these hosts have no balancer\. Fix: remove"):
        load_policy(inventory({"rolling": {"canary": {}}}), HOSTS)


def test_the_cli_refuses_a_bad_canary_before_any_host(project_copy):
    add(project_copy, "group_data/web.py", 'rolling["canary"] = {"response_time": "1s"}')
    assert_refused(run(project_copy, "apply", "lab", "pm2", "--dry-run"), str(project_copy / "group_data/web.py"),
                   "rolling.canary.response_time")  # fmt: skip

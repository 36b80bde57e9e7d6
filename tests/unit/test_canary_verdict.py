"""The canary's verdict, pure: figures in, breach / pass / no verdict out; and the figures HAProxy's counters
give over a window (the real HAProxy is driven in tests/balancers/test_canary_haproxy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun.balancers.haproxy import Counters, counters, parse_stat, window_figures
from opsrun.balancers.stats import Figures, combine
from opsrun.rollout.canary import judge
from opsrun.settings.models import CanaryPolicy

DATA = Path(__file__).resolve().parents[1] / "data" / "haproxy"
LIMITS = CanaryPolicy()  # the runbooks' defaults: 5 %, 1 s, 100 requests, 300 s


def test_defaults_are_the_runbooks():
    assert (LIMITS.error_rate, LIMITS.response_time, LIMITS.min_requests, LIMITS.bake) == (5.0, 1.0, 100, 300.0)


def test_an_error_rate_above_the_threshold_is_a_breach_at_once():
    verdict = judge(Figures(150, 30, 0.02), Figures(290, 0, 0.012), LIMITS, 30.0, final=False)
    assert verdict is not None and verdict.outcome == "breach" and verdict.failed
    assert verdict.reason == (
        "error rate 20.0 % > 5 % over 150 requests in 30 s; "
        "unchanged hosts: error rate 0.0 %, response time 0.012 s over 290 requests"
    )


def test_a_slow_canary_is_a_breach():
    verdict = judge(Figures(400, 0, 1.5), None, LIMITS, 12.0, final=False)
    assert verdict is not None and verdict.outcome == "breach"
    assert verdict.reason == "response time 1.500 s > 1 s over 400 requests in 12 s"


def test_both_breaches_are_named():
    verdict = judge(Figures(100, 10, 2.0), None, LIMITS, 5.0, final=False)
    assert verdict is not None
    assert verdict.reason.startswith("error rate 10.0 % > 5 % and response time 2.000 s > 1 s over 100 requests")


def test_good_figures_are_no_verdict_yet_then_a_pass_when_the_bake_ends():
    good = Figures(500, 5, 0.05)
    assert judge(good, None, LIMITS, 100.0, final=False) is None  # the bake goes on
    verdict = judge(good, None, LIMITS, 300.0, final=True)
    assert verdict is not None and verdict.outcome == "pass" and not verdict.failed
    assert verdict.reason == (
        "passed: error rate 1.0 % (at most 5 %), response time 0.050 s (at most 1 s) over 500 requests in 300 s"
    )


@pytest.mark.parametrize(
    "figures",
    [Figures(0, 0), Figures(99, 0, 0.01), Figures(10, 9, 5.0), Figures(50, 0, None)],
    ids=["no requests", "one short, all good", "few, all bad", "half, no timing"],
)
def test_too_few_requests_is_never_a_pass(figures):
    assert judge(figures, None, LIMITS, 120.0, final=False) is None  # no breach either: the bake goes on
    verdict = judge(figures, None, LIMITS, 300.0, final=True)
    assert verdict is not None and verdict.outcome == "no_verdict" and verdict.failed
    assert verdict.reason.startswith(f"no verdict: {figures.requests} requests in 300 s, fewer than the 100 needed")


def test_exactly_the_threshold_is_within_it():
    verdict = judge(Figures(100, 5, 1.0), None, LIMITS, 300.0, final=True)
    assert verdict is not None and verdict.outcome == "pass"


def test_unchanged_hosts_above_the_threshold_too_are_said_so():
    verdict = judge(Figures(200, 40, 0.1), Figures(400, 80, 0.1), LIMITS, 30.0, final=False)
    assert verdict is not None and verdict.outcome == "breach"  # still a failure: nothing says the canary is fine
    assert verdict.reason.endswith("(above the threshold too: the fault may not be the change)")


def test_thresholds_come_from_the_setting():
    strict = CanaryPolicy(error_rate=1, response_time=0.2, min_requests=20, bake=60, interval=1)
    verdict = judge(Figures(40, 1, 0.25), None, strict, 10.0, final=False)
    assert verdict is not None
    assert verdict.reason == "error rate 2.5 % > 1 % and response time 0.250 s > 0.2 s over 40 requests in 10 s"


def test_combine_sums_counts_and_weighs_response_times_by_requests():
    both = combine([Figures(100, 1, 0.1), Figures(300, 3, 0.5), Figures(0, 0, None)])
    assert (both.requests, both.errors, both.error_rate) == (400, 4, 1.0)
    assert both.response_time == pytest.approx(0.4)
    assert combine([]).response_time is None and combine([]).error_rate is None


# -------------------------------------------------------------------------------- HAProxy's counters


def test_counters_are_read_from_a_recorded_show_stat():
    rows = parse_stat((DATA / "stat-web2-drain.txt").read_text())
    row = rows[("web", "web1")]
    got = counters(row)
    assert got.responses == int(row["req_tot"]) and got.errors_5xx == int(row["hrsp_5xx"])
    assert got.failed == int(row["eresp"]) and got.rtime_ms == float(row["rtime"])


def test_counters_add_up_the_status_classes_where_req_tot_is_empty():
    row = {"req_tot": "", "hrsp_1xx": "0", "hrsp_2xx": "7", "hrsp_3xx": "1", "hrsp_4xx": "1", "hrsp_5xx": "2"}
    assert counters(row) == Counters(11, 2, 0, 0.0)


def test_a_window_counts_the_responses_and_failures_between_two_readings():
    got = window_figures(Counters(1000, 3, 1, 10.0), Counters(1150, 33, 4, 10.0))
    assert (got.requests, got.errors) == (153, 33)  # 150 responses + 3 that never came; 30 5xx + those 3


def test_counters_that_went_down_were_reset_and_the_window_counts_from_zero():
    got = window_figures(Counters(5000, 40, 2, 12.0), Counters(120, 6, 0, 30.0))
    assert (got.requests, got.errors) == (120, 6)
    assert got.response_time == pytest.approx(0.030)


@pytest.mark.parametrize(
    ("start", "end", "mean_ms"),
    [
        # Measured on HAProxy 2.6.12 here: 100 responses of 10 ms, then 50 of 200 ms (rtime the mean of all)
        (Counters(100, 0, 0, 11.0), Counters(150, 0, 0, 74.0), 200.0),
        # 1500 responses of 1 ms, then 100 and 200 of 100 ms (rtime a running mean of the last 512)
        (Counters(1500, 0, 0, 5.0), Counters(1600, 0, 0, 22.0), 100.0),
        (Counters(1500, 0, 0, 5.0), Counters(1700, 0, 0, 36.0), 100.0),
    ],
    ids=["fewer than 512", "after 512, 100 new", "after 512, 200 new"],
)
def test_the_window_response_time_is_recovered_from_haproxys_running_mean(start, end, mean_ms):
    got = window_figures(start, end)
    assert got.response_time is not None
    assert got.response_time * 1000 == pytest.approx(mean_ms, rel=0.03)


def test_a_window_without_responses_has_no_response_time():
    got = window_figures(Counters(10, 0, 0, 5.0), Counters(10, 0, 2, 5.0))
    assert (got.requests, got.errors, got.response_time) == (2, 2, None)


# ------------------------------------------------------------------------------------ CloudWatch's answer


def test_cloudwatch_results_add_up_over_minutes_and_load_balancers():
    from opsrun.balancers.elbv2_metrics import figures

    results = [
        {"Id": "errors_0", "Values": [3.0, 2.0]},
        {"Id": "requests_0", "Values": [60.0, 40.0]},
        {"Id": "time_sum_0", "Values": [3.0, 2.0]},
        {"Id": "time_count_0", "Values": [60.0, 40.0]},
        {"Id": "requests_1", "Values": [100.0]},  # a second load balancer forwarding to the group
        {"Id": "time_sum_1", "Values": [15.0]},
        {"Id": "time_count_1", "Values": [100.0]},
        {"Id": "errors_1", "Values": []},  # CloudWatch leaves out a minute without data
    ]
    got = figures(results)
    assert (got.requests, got.errors, got.error_rate) == (200, 5, 2.5)
    assert got.response_time == pytest.approx(0.1)


def test_cloudwatch_dimensions_are_the_arns_suffixes():
    from opsrun.balancers.elbv2_metrics import dimension

    base = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
    assert dimension(base + "targetgroup/web/0123456789abcdef", "targetgroup") == "targetgroup/web/0123456789abcdef"
    assert dimension(base + "loadbalancer/app/web-lb/50dc6c495c0c9188", "loadbalancer") == "app/web-lb/50dc6c495c0c9188"

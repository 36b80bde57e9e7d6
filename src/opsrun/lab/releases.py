"""The demo app's misbehaving releases, and how many requests users may see fail while a canary judges one.

A release of the demo app (apps/demo) is its code with the env of group_data's `pm2_apps`. Two variables
make one misbehave while it still answers /health (so every gate and the pm2 suite pass it, and only what
users see can catch it): FAIL_ONE_IN=5 answers 500 to one request in five, SLOW_MS=1500 answers every other
request 1.5 s late. BAD_RELEASE is the tour's bad release: a patch to group_data/web.py that ships version 2
with FAIL_ONE_IN=5 and rolls it with a canary and `on_failure: "rollback"` (`git apply` it, `git apply -R`
takes it away).
"""

from __future__ import annotations

import math

FAULTS = ("FAIL_ONE_IN", "SLOW_MS")  # the demo app's env variables that make a release misbehave
BAD_RELEASE = "apps/demo-fails-1-in-5.patch"  # relative to the ops repo
SLACK = 10  # requests in flight when the canary is taken out, and rounding


def failed_requests_bound(
    rate: float,
    *,
    fail_one_in: int,
    canary_hosts: int,
    serving_hosts: int,
    bake: float,
    interval: float,
    slack: int = SLACK,
) -> int:
    """At most how many requests fail while a release that fails one in `fail_one_in` serves as the canary:
    its share of the traffic (`canary_hosts` of the `serving_hosts` behind the balancer) at `rate` requests a
    second, for its whole bake and one more reading interval (a breach ends the bake sooner), and `slack`."""
    if fail_one_in < 1 or not 0 < canary_hosts <= serving_hosts or rate < 0 or bake < 0 or interval < 0:
        raise ValueError(
            f"no bound for fail_one_in={fail_one_in}, canary_hosts={canary_hosts}, "
            f"serving_hosts={serving_hosts}, rate={rate}, bake={bake}, interval={interval}"
        )
    share = canary_hosts / serving_hosts
    return math.ceil(rate * share / fail_one_in * (bake + interval)) + slack

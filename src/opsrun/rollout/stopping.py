"""The operator's stop now (the second Ctrl-C) in a rollout: what becomes of the hosts in flight. A host
that nothing was changed on yet goes back in the balancer; one that may have changed stays out; each is
recorded as interrupted at its stage, and its place is then read back from the balancer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsrun.model.results import DeployRun

if TYPE_CHECKING:
    from opsrun.rollout.executor import Rollout


class Untouched(Exception):
    """A host a stage left as it found it, because the rollout is stopping: not that host's failure."""


def interrupted_in_apply(ro: Rollout, run: DeployRun, live: list[str]) -> None:
    """The operator's stop now came during the batch's apply: a host that nothing changed on yet goes
    back in the balancer, one that may have changed (an operation changed, or was cut short) stays out."""
    out = ro.result.hosts
    by_name = {hr.name: hr for hr in run.hosts}
    unchanged = [h for h in live if h in by_name and not by_name[h].failed and not by_name[h].changed_count]
    if ro.balancer is not None:
        ro.put_back(unchanged, "apply")
    for h in live:
        hr = by_name.get(h)
        if hr is None:  # no word from the apply about it
            out[h].interrupt("apply", "stopped now at apply", in_balancer=out[h].in_balancer)
        elif h in unchanged and ro.balancer is None:
            out[h].interrupt("apply", "stopped now at apply, before any change", in_balancer=True)
        elif h not in unchanged and hr.failed:
            bad = hr.failed_operation()
            why = hr.error or (f"operation {bad.name!r}: {bad.error}" if bad else "stopped now")
            out[h].interrupt("apply", f"{why}; it may be half changed", in_balancer=out[h].in_balancer)
        elif h not in unchanged:
            why = f"stopped now after its apply changed {hr.changed_count} operation(s), before its checks"
            out[h].interrupt("apply", why, in_balancer=out[h].in_balancer)
        ro.record(out[h])


def read_back(ro: Rollout, batch: list[str]) -> None:
    """After a stop now: the place of each host of the batch that was interrupted or failed, as the
    balancer says it (what the summary reports), beside what the rollout meant to leave."""
    bal = ro.balancer
    if bal is None or not ro.now_set():
        return
    for h in batch:
        out = ro.result.hosts[h]
        if out.outcome not in ("interrupted", "failed"):
            continue
        try:
            state = bal.state(ro.server(h))
        except Exception as exc:  # noqa: BLE001 - what the summary says is then the rollout's own account
            out.add_note(f"could not be read back from {bal.name}: {exc}")
            continue
        out.in_balancer = state.admin == "ready"
        out.add_note(f"{bal.name} says {state}")
        ro.record(out)

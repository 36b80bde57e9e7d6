"""The commands' single calls: load and check every input first, then touch hosts, then keep the result.

Everything that can be wrong with the input (inventory, group_data, --data, deploy or suite name, --limit,
an unusable .opsrun/) is found before the first SSH connection, so a bad command line never touches a host.
The command line's knobs shared by every run on hosts are `options.Options`; what it gives every run alike (the
state store, the stop, where notes go) is `options.Session`.

Apply (with its rollout, leases and healing) is in `applying`, the checking runs (drift, dr-test, verify) in
`checking`, and where each document is kept in `saving`.
"""

from __future__ import annotations

from opsrun.runs.applying import LEASE_TTL, apply
from opsrun.runs.checking import dr_checks, dr_test, drift, verify_suite
from opsrun.runs.options import HostList, Options, Session, list_hosts
from opsrun.runs.saving import save

__all__ = [
    "LEASE_TTL",
    "HostList",
    "Options",
    "Session",
    "apply",
    "dr_checks",
    "dr_test",
    "drift",
    "list_hosts",
    "save",
    "verify_suite",
]

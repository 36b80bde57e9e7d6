"""What the controller (`verify`, `controller`) and the suite's own pytest (`pytest_plugin` and the verification
backend, `ssh_shell`, which import testinfra) agree on: the backend's name, the environment that tells the plugin where
things are, and which host data a suite may see. A module of its own, importing nothing of either side: the controller's
side, and so every command line, never imports testinfra."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

NAME = "opsrun-ssh"  # the testinfra connection of opsrun.verification.ssh_shell: --hosts=opsrun-ssh://web1
SUDO_ENV = "OPSRUN_VERIFY_SUDO"  # JSON, host -> {user, password}: each host's escalation (opsrun.hosts.sudo)
HOSTDATA_ENV = "OPSRUN_VERIFY_HOSTDATA"  # a JSON file, host -> its public_data (the `host_data` fixture)
INVENTORY_ENV = "OPSRUN_VERIFY_INVENTORY"  # a JSON file: the inventory's data, for a controller-scoped suite
RESULTS_ENV = "OPSRUN_VERIFY_RESULTS"  # where the plugin writes each test's result, one JSON line each
# JSON for a host-scoped suite's pytest: {"concurrency": N, "targets": {host: addr:port}, "channel": [r, w]}
PARALLEL_ENV = "OPSRUN_VERIFY_PARALLEL"
# the deploy a rollout applied to these hosts just before this verification (the `applied_deploy` fixture)
AFTER_APPLY_ENV = "OPSRUN_VERIFY_AFTER_APPLY"

SECRET_KEY = re.compile(r"pass|secret|token|credential|private", re.IGNORECASE)


def public_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Host data a suite may see: JSON values only, nothing whose name says it is a secret."""
    out = {}
    for key, value in data.items():
        if SECRET_KEY.search(key):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out

"""Run a testinfra suite (verify/SUITE/) against inventory hosts and collect results per host and test.

The inventory's SSH settings become an ssh_config (one `Host` block per inventory name), so OpenSSH applies
the same key, known_hosts and strict host key checking as pyinfra. The suite's commands go to one remote
shell per host over one ssh session (opsrun.ssh_shell, testinfra's `ssh` backend without an ssh process
per command). The paramiko backend is not used: it never checks host keys. pytest runs in a subprocess,
once per verification.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opsrun import processes, ssh_shell
from opsrun.deadlines import DEFAULTS, Deadlines
from opsrun.errors import ConfigError
from opsrun.inventory import Host, Inventory
from opsrun.project import Project
from opsrun.results import TestResult, VerifyRun

# JSON for the suite's pytest (opsrun.pytest_plugin): {"concurrency": N, "deadlines": {host: s}, "targets": {...}}
PARALLEL_ENV = "OPSRUN_VERIFY_PARALLEL"
# the deploy a rollout applied to these hosts just before this verification (the `applied_deploy` fixture)
AFTER_APPLY_ENV = "OPSRUN_VERIFY_AFTER_APPLY"

_NO_HOST = Host("", (), {})
SECRET_KEY = re.compile(r"pass|secret|token|credential|private", re.IGNORECASE)
KEX_FIRST = "^curve25519-sha256,curve25519-sha256@libssh.org"  # ahead of OpenSSH's defaults, which follow
STRICT = {"yes": "yes", "accept-new": "accept-new", "no": "no", "off": "no", "ask": "yes"}


def ssh_config(inventory: Inventory, hosts: list[str], control_dir: Path, connect_timeout: float = 10) -> str:
    blocks = []
    for name in hosts:
        data = inventory.hosts[name].data
        strict = str(data.get("ssh_strict_host_key_checking", "accept-new"))
        if strict not in STRICT:
            raise ConfigError(
                inventory.path,
                f"unknown value {strict!r} for host {name}.",
                field="ssh_strict_host_key_checking",
                fix=f"use one of {', '.join(STRICT)}",
            )
        value = _config_value(inventory, name)
        lines = [
            f"Host {value('host name', name)}",
            f"  HostName {value('ssh_hostname', data.get('ssh_hostname', name))}",
            f"  Port {value('ssh_port', data.get('ssh_port', 22))}",
            "  BatchMode yes",
            f"  StrictHostKeyChecking {STRICT[strict]}",
            f"  ConnectTimeout {max(1, round(connect_timeout))}",
            "  ControlMaster auto",
            f"  ControlPath {control_dir}/%C",
            "  ControlPersist 30s",
            # pyinfra's own connection (paramiko) uses curve25519; OpenSSH's first choice, the post-quantum
            # sntrup761 hybrid, costs 0.08 s of this machine's CPU per connection (bench/ssh_connect.py)
            f"  KexAlgorithms {KEX_FIRST}",
            "  LogLevel ERROR",
        ]
        if "ssh_user" in data:
            lines.append(f"  User {value('ssh_user', data['ssh_user'])}")
        if "ssh_key" in data:
            lines += [f"  IdentityFile {value('ssh_key', data['ssh_key'])}", "  IdentitiesOnly yes"]
        if "ssh_known_hosts_file" in data:
            lines.append(f"  UserKnownHostsFile {value('ssh_known_hosts_file', data['ssh_known_hosts_file'])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


SSH_CONFIG_VALUE = re.compile(r"[A-Za-z0-9._/@%+=:,~\[\]-]+")


def _config_value(inventory: Inventory, host: str) -> Callable[[str, object], str]:
    """A checker for values going into the ssh_config: one word of safe characters, or ConfigError (a space,
    quote or newline would add options, e.g. a ProxyCommand that runs on this machine)."""

    def value(field: str, raw: object) -> str:
        text = str(raw)
        if not SSH_CONFIG_VALUE.fullmatch(text):
            raise ConfigError(
                inventory.where(host, field) if field in inventory.hosts.get(host, _NO_HOST).data else inventory.path,
                f"{text!r} cannot go into an ssh_config for host {host} (spaces, quotes and control characters "
                "would change its meaning).",
                field=field,
                fix="use a value of letters, digits and ._/@%+=:,~-",
            )
        return text

    return value


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


DEFAULT_CONCURRENCY = 16  # hosts verified at once: at most this many SSH sessions from one verification


def run_suite(
    project: Project,
    inventory: Inventory,
    suite: str,
    hosts: list[str],
    *,
    deadlines: dict[str, float] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: threading.Event | None = None,
    connect_timeout: float = DEFAULTS["connect"],
    after_apply: str | None = None,
) -> VerifyRun:
    """Run verify/SUITE/ against `hosts`: collected once, then each host's tests in a process of its own,
    `concurrency` hosts at a time, each within its deadline (host -> seconds; default 5 minutes). One
    result per host and test; a host that cannot be reached is one error line. `stop` ends it at once
    (verification changes nothing). `after_apply`: the deploy a rollout applied to these hosts just before
    (a suite may use what that apply refreshed instead of refreshing it again)."""
    suite_dir = project.suite_path(suite)
    from opsrun import controller

    if controller.is_controller_suite(suite_dir):  # cloud-side checks: once, from this machine
        limit = max((deadlines or {}).values(), default=DEFAULTS["verify"])
        return controller.run_suite(project, inventory, suite, hosts, limit)
    started = time.monotonic()
    deadlines = {h: (deadlines or {}).get(h, DEFAULTS["verify"]) for h in hosts}
    # ControlPath sockets need a short directory (sun_path is 108 bytes)
    with tempfile.TemporaryDirectory(prefix="opsrun-v-", dir="/tmp") as tmp:
        tmpdir = Path(tmp)
        _write_pytest_inputs(tmpdir, inventory, hosts, connect_timeout)
        env = _pytest_env(tmpdir, inventory, hosts, deadlines, concurrency, after_apply=after_apply)
        backstop = 60 + max(deadlines.values(), default=0) * (1 + len(hosts) // max(1, concurrency))
        returncode, ended, output = _run_pytest(
            _pytest_command(project, suite_dir, tmpdir, hosts), project.root, env, tmpdir, backstop, stop
        )
        results = _read_results(tmpdir)
    return VerifyRun(
        inventory.name,
        suite,
        hosts,
        results,
        time.monotonic() - started,
        ended if ended is not None else _pytest_error(returncode, results, output),
        interrupted=ended if stop is not None and stop.is_set() else None,
    )


def run_suite_within(
    project: Project,
    inventory: Inventory,
    suite: str,
    hosts: list[str],
    limits: Deadlines,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: threading.Event | None = None,
    after_apply: str | None = None,
) -> VerifyRun:
    """`run_suite` with each host's verify deadline and the connect timeout taken from `limits`."""
    return run_suite(
        project,
        inventory,
        suite,
        hosts,
        deadlines=limits.stage("verify", hosts),
        concurrency=concurrency,
        stop=stop,
        connect_timeout=limits.connect_timeout(hosts),
        after_apply=after_apply,
    )


def _write_pytest_inputs(tmpdir: Path, inventory: Inventory, hosts: list[str], connect_timeout: float) -> None:
    """The ssh_config, the hosts' public data and an empty pytest.ini, written into the run's folder."""
    (tmpdir / "ssh_config").write_text(ssh_config(inventory, hosts, tmpdir, connect_timeout))
    (tmpdir / "hostdata.json").write_text(json.dumps({h: public_data(inventory.hosts[h].data) for h in hosts}))
    (tmpdir / "pytest.ini").write_text("[pytest]\n")  # the suite is not under the tool's own pytest settings


def _pytest_command(project: Project, suite_dir: Path, tmpdir: Path, hosts: list[str]) -> list[str]:
    """pytest on the suite with opsrun's plugin, against `hosts` through the run's ssh_config."""
    return [
        sys.executable,
        "-m",
        "pytest",
        str(suite_dir),
        "-c",
        str(tmpdir / "pytest.ini"),
        "--rootdir",
        str(project.root),
        "-p",
        "no:cacheprovider",
        "-p",
        "opsrun.pytest_plugin",
        "-q",
        "--no-header",
        "--tb=short",
        "--color=no",
        f"--hosts={','.join(f'{ssh_shell.NAME}://{h}' for h in hosts)}",
        f"--ssh-config={tmpdir / 'ssh_config'}",
    ]


def _pytest_env(
    tmpdir: Path,
    inventory: Inventory,
    hosts: list[str],
    deadlines: dict[str, float],
    concurrency: int,
    *,
    after_apply: str | None = None,
) -> dict[str, str]:
    """The environment that tells opsrun.pytest_plugin where to write results, the hosts' data, how many
    hosts to check at once, each within which deadline, at which address, and which deploy was just applied."""
    targets = {h: f"{_data(inventory, h, 'ssh_hostname', h)}:{_data(inventory, h, 'ssh_port', 22)}" for h in hosts}
    env = {k: v for k, v in os.environ.items() if k != AFTER_APPLY_ENV}
    if after_apply:
        env[AFTER_APPLY_ENV] = after_apply
    return {
        **env,
        "OPSRUN_VERIFY_RESULTS": str(tmpdir / "results.jsonl"),
        "OPSRUN_VERIFY_HOSTDATA": str(tmpdir / "hostdata.json"),
        PARALLEL_ENV: json.dumps({"concurrency": concurrency, "deadlines": deadlines, "targets": targets}),
    }


def _run_pytest(
    cmd: list[str], cwd: Path, env: dict[str, str], tmpdir: Path, backstop: float, stop: threading.Event | None
) -> tuple[int | None, str | None, str]:
    """Run pytest to its end, its backstop or `stop`: its exit code, why it was ended (None: it ended by
    itself) and its output."""
    with (tmpdir / "pytest.log").open("w+") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the controller only; it ends the verification itself
        )
        ended = processes.supervise(proc, backstop=backstop, stop=stop, what="verification", gentle=None)
        log.seek(0)
        return proc.returncode, ended, log.read()


def _read_results(tmpdir: Path) -> list[TestResult]:
    """The results the plugin wrote, one JSON line a test (a file per host process)."""
    records = [
        json.loads(line) for path in sorted(tmpdir.glob("results.jsonl*")) for line in path.read_text().splitlines()
    ]
    return [
        TestResult(
            host=r["host"] or "?",
            test=_strip_host(r["test"], r["host"]),
            outcome=r["outcome"],
            message=r["message"],
            seconds=r["seconds"],
            start=r.get("start"),
        )
        for r in records
    ]


def _pytest_error(returncode: int | None, results: list[TestResult], output: str) -> str | None:
    """pytest's own failure (not a failed test): an exit other than 0 and 1, or 1 with every test passed."""
    if returncode not in (0, 1) or (returncode == 1 and not any(r.outcome != "passed" for r in results)):
        return f"pytest exited {returncode}:\n" + "\n".join(output.strip().splitlines()[-15:])
    return None


def _data(inventory: Inventory, host: str, key: str, default: object) -> object:
    return inventory.hosts[host].data.get(key, default)


def _strip_host(test: str, host: str | None) -> str:
    """`test_file.py::test_x[opsrun-ssh://web1-nginx]` -> `test_file.py::test_x[nginx]`."""
    if not host:
        return test
    spec = f"{ssh_shell.NAME}://{host}"
    return test.replace(f"[{spec}]", "").replace(f"{spec}-", "").replace(f"-{spec}", "")

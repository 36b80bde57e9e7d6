"""Property-based fuzz of group_data, inventories and CLI arguments (issue 11): every case ends with exit 0,
or exit 2 naming the file and the fix; never a traceback; never a connection to a host.

A case that passes validation stops before connecting: `settings.check_hosts` is wrapped so that, once it
has passed, the command ends with exit 0 (`Validated`). The SSH guard counts anything that tried to go on.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsrun import settings as schemas
from opsrun.cli import cli
from opsrun.errors import OpsrunError
from tests.conftest import copy_ops
from tests.unit import ssh_guard


class Validated(OpsrunError):
    exit_code: ClassVar[int] = 0


ODD: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["x", "", "abc", "1", "25%", "101%", "; touch /tmp/opsrun-fuzz", "a\nb", "{nosuch}", "../x"]),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-5, max_value=70000), max_size=3),
    st.dictionaries(st.sampled_from(["tcp", "http", "type", "name", "x"]), st.integers() | st.text(max_size=5)),
)
GROUP_DATA_TARGETS = [
    "nginx_listen_port", "nginx_upstream_servers", "nginx_worker_processes", "nginx_extra_directives",
    "pm2_version", "pm2_apps", 'pm2_apps[0]["instances"]', 'pm2_apps[0]["name"]', 'pm2_apps[0]["env"]',
    "patching_hold", "patching_upgrade", "rolling", 'rolling["serial"]', 'rolling["max_fail"]',
    'rolling["health"]', 'rolling["health"]["status"]', 'rolling["health"]["http"]', 'rolling["reboot"]',
    'rolling["last"]', "balancer", "dr", "nginx_unknown_setting", "redis_cluster_ports",
]  # fmt: skip
INVENTORY_TARGETS = [
    'all[1]["ssh_port"]', 'all[1]["ssh_user"]', 'all[1]["ssh_hostname"]', 'all[1]["ssh_strict_host_key_checking"]',
    'all[1]["balancer"]["server"]', 'all[1]["balancer"]["backend"]', 'all[1]["balancer"]', "web", "db",
]  # fmt: skip
COMMANDS = [
    ["apply", "lab", "nginx"], ["apply", "lab", "nginx", "--dry-run"], ["apply", "lab", "pm2", "--dry-run"],
    ["drift", "lab", "nginx"], ["verify", "lab", "nginx"], ["apply", "lab", "patching", "--dry-run"],
]  # fmt: skip
FLAG_VALUES = st.sampled_from(["", ",", "web1", "web9", "web*", "1", "25%", "0", "x", "-1", "2026-19", "../x"])


@pytest.fixture(scope="module")
def project():
    base = Path(tempfile.mkdtemp(prefix="opsrun-fuzz-"))
    try:
        yield copy_ops(base / "ops")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def stop_after_validation(monkeypatch):
    real = schemas.check_hosts

    def check_then_stop(inv: Any, hosts: list[str]) -> None:
        real(inv, hosts)
        raise Validated("validated; stopped before connecting")

    monkeypatch.setattr(schemas, "check_hosts", check_then_stop)


def _case(project: Path, target: str, value: Any, in_inventory: bool) -> None:
    for path in ("group_data/web.py", "inventories/lab.py"):
        shutil.copy(Path(__file__).resolve().parents[2] / path, project / path)
    path = project / ("inventories/lab.py" if in_inventory else "group_data/web.py")
    path.write_text(path.read_text() + f"\n{target} = {value!r}\n")


@settings(
    max_examples=520,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.booleans(),
    gd_target=st.sampled_from(GROUP_DATA_TARGETS),
    inv_target=st.sampled_from(INVENTORY_TARGETS),
    value=ODD,
    command=st.sampled_from(COMMANDS),
    flag=st.sampled_from([None, "--limit", "--serial", "--max-fail"]),
    flag_value=FLAG_VALUES,
)
def test_any_input_ends_in_exit_0_or_a_clear_exit_2_and_reaches_no_host(
    project, stop_after_validation, host_guard, where, gd_target, inv_target, value, command, flag, flag_value
):
    _case(project, inv_target if where else gd_target, value, in_inventory=where)
    args = list(command)
    if flag and (flag == "--limit" or command[0] == "apply"):
        args += [flag, flag_value]
    result = CliRunner().invoke(cli, ["--project", str(project), *args])
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and " Fix: " in result.stderr, result.stderr
        assert str(project) in result.stderr or "the command line" in result.stderr, result.stderr
    else:
        assert "validated; stopped before connecting" in result.stderr, result.output
    assert ssh_guard.attempts == [], ssh_guard.attempts

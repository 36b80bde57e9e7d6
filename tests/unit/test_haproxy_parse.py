"""HAProxy runtime API parsers, on output recorded from the lab's HAProxy 2.6 (tests/data/haproxy/)."""

from pathlib import Path

import pytest

from opsrun.balancers.haproxy import parse_servers_state, parse_stat
from opsrun.errors import BalancerError

DATA = Path(__file__).resolve().parents[1] / "data" / "haproxy"

CASES = {
    "servers-state-all-up": {"web1": ("ready", 2), "web2": ("ready", 2), "web3": ("ready", 2)},
    "servers-state-web2-drain": {"web1": ("ready", 2), "web2": ("drain", 2), "web3": ("ready", 2)},
    "servers-state-web2-maint": {"web1": ("ready", 2), "web2": ("maint", 0), "web3": ("ready", 2)},
    "servers-state-all-down": {"web1": ("ready", 0), "web2": ("ready", 0), "web3": ("ready", 0)},  # no app yet
}


@pytest.mark.parametrize("path", sorted(DATA.glob("servers-state-*.txt")), ids=lambda p: p.stem)
def test_servers_state(path):
    rows = parse_servers_state(path.read_text())
    assert {name: (row.admin, row.op_state) for name, row in rows.items()} == CASES[path.stem]
    assert all(row.backend == "web" for row in rows.values())


def test_stat_gives_sessions_and_status_per_server():
    stat = parse_stat((DATA / "stat-web2-drain.txt").read_text())
    assert stat[("web", "web2")]["status"] == "DRAIN"
    assert stat[("web", "web2")]["scur"] == "0"
    assert stat[("web", "web1")]["status"] == "UP"
    assert ("web", "BACKEND") in stat and ("fe", "FRONTEND") in stat


@pytest.mark.parametrize("answer", ["Can't find backend.\n", "", "Unknown command\n"])
def test_unexpected_answers_are_balancer_errors(answer):
    with pytest.raises(BalancerError):
        parse_servers_state(answer)
    with pytest.raises(BalancerError):
        parse_stat(answer)

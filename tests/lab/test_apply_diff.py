"""`opsrun apply lab nginx --diff` (with and without --dry-run) after a hand edit on a lab host: the unified diff
of the file the change writes, as drift shows it, and none of opsrun's own swap commands in what it prints."""

from __future__ import annotations

import re

import pytest

from tests.conftest import opsrun

pytestmark = pytest.mark.lab
CONF = "/etc/nginx/nginx.conf"
CONFIG_OP = "nginx configuration (validated with nginx -t)"


@pytest.fixture
def hand_edit_on_web2(web_tier, on_host):
    """The web tier as this repo says (web_tier), then keepalive_timeout changed by hand on web2; put back after."""
    on_host("web2", f"sed -i 's/keepalive_timeout 65;/keepalive_timeout 5;/' {CONF}")
    yield
    on_host("web2", f"sed -i 's/keepalive_timeout 5;/keepalive_timeout 65;/' {CONF} && nginx -t -q")


def diff_lines(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if re.match(r"^    [-+] ", line)]


def test_dry_run_diff_shows_the_hand_edit_and_no_swap_command(hand_edit_on_web2, on_host):
    proc = opsrun("apply", "lab", "nginx", "--diff", "--dry-run")
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 0, printed
    assert f"web2: would change '{CONFIG_OP}'" in proc.stdout
    assert f"web1: would change '{CONFIG_OP}'" not in proc.stdout  # the other hosts match
    assert f"    Will modify {CONF}" in proc.stdout
    assert diff_lines(proc.stdout) == [["-", "keepalive_timeout", "5;"], ["+", "keepalive_timeout", "65;"]]
    assert "config-swap" not in printed
    assert "keepalive_timeout 5;" in on_host("web2", f"cat {CONF}").stdout  # a dry run changes nothing


def test_apply_diff_shows_what_it_changed_and_no_swap_command(hand_edit_on_web2, on_host):
    proc = opsrun("apply", "lab", "nginx", "--diff", "--limit", "web2")
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 0, printed
    assert f"web2: changed '{CONFIG_OP}'" in proc.stdout
    assert diff_lines(proc.stdout) == [["-", "keepalive_timeout", "5;"], ["+", "keepalive_timeout", "65;"]]
    assert "config-swap" not in printed
    assert "keepalive_timeout 65;" in on_host("web2", f"cat {CONF}").stdout


def test_at_vv_opsruns_own_commands_are_shown(hand_edit_on_web2):
    proc = opsrun("apply", "lab", "nginx", "--dry-run", "--limit", "web2", "-vv")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "/var/lib/opsrun/config-swap" in proc.stdout

"""The lab reached as a fleet is: as `admin` with sudo, through a bastion, root logins refused and every SSH
connection that does not come from the bastion refused (tests/lab/conftest.py `behind_bastion`). The rolling
apply (its leases, drains, pyinfra, reboot and boot-id wait, health gates, verify suites), verify and drift
all go that way; a host whose sudo asks for a password fails alone, before its drain, and with the password
given it passes, while the hosts whose sudo does not ask never get it; a connection that skips the bastion
fails, which is what makes the passing tests proof that every connection used it."""

from __future__ import annotations

import secrets
import shlex

import pytest

from opsrun.lab import aptrepo
from tests.conftest import opsrun_json
from tests.lab.conftest import HOSTS, fleet_project, install_demo_1_0

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fleet_ops(tmp_path_factory, bastion):
    return fleet_project(tmp_path_factory.mktemp("fleet") / "ops", bastion)


@pytest.fixture
def demo_1_0(lab, on_host, web_tier):
    install_demo_1_0(lab, on_host, HOSTS)


def versions(console) -> dict[str, str]:
    return {h: console(h, "dpkg-query -W -f '${Version}' opsrun-demo").stdout for h in HOSTS}


def test_rolling_patching_with_reboots_as_admin_with_sudo_through_the_bastion(
    lab, haproxy, console, fleet_ops, demo_1_0, behind_bastion
):
    boots = {h: console(h, "cat /proc/sys/kernel/random/boot_id").stdout for h in HOSTS}
    aptrepo.publish(lab.cfg, "1.1", reboot=True)
    code, doc = opsrun_json("apply", "lab", "patching", project=fleet_ops)
    assert code == 0, doc
    for h in HOSTS:
        host = doc["hosts"][h]
        assert (host["outcome"], host["rebooted"], host["in_balancer"]) == ("done", True, True), host
        assert {"package": "opsrun-demo", "from": "1.0", "to": "1.1"} in host["upgrades"]
        assert console(h, "cat /proc/sys/kernel/random/boot_id").stdout != boots[h]
        assert haproxy.state(h).admin == "ready"
    assert versions(console) == dict.fromkeys(HOSTS, "1.1")
    for h in HOSTS:  # the leases were taken and given back as root, through sudo
        assert console(h, "test -e /var/lib/opsrun/lease && cat /var/lib/opsrun/lease || true").stdout == ""


def journal_cursor(console, host: str) -> str:
    """Where sshd's journal on `host` ends now: the logins after it are this test's. (A time to the second
    also took in the root logins the fixtures made in that same second, before the bastion was required.)"""
    out = console(host, "journalctl -u ssh -n 1 --show-cursor --no-pager -o cat").stdout
    return next(line.removeprefix("-- cursor: ") for line in out.splitlines() if line.startswith("-- cursor: "))


def test_rolling_nginx_verify_and_drift_as_admin_with_sudo_through_the_bastion(
    haproxy, console, fleet_ops, web_tier, behind_bastion
):
    since = journal_cursor(console, "web1")
    code, doc = opsrun_json("apply", "lab", "nginx", "-e", "nginx_keepalive_timeout=64", project=fleet_ops)
    try:
        assert code == 0, doc
        assert [doc["hosts"][h]["outcome"] for h in HOSTS] == ["done"] * 3
        assert all(
            console(h, "grep -c 'keepalive_timeout 64;' /etc/nginx/nginx.conf").stdout.strip() == "1" for h in HOSTS
        )
        for suite in ("nginx", "pm2"):
            code, verified = opsrun_json("verify", "lab", suite, project=fleet_ops)
            assert code == 0, verified
            assert set(verified["hosts"]) == set(HOSTS)
        code, drift = opsrun_json("drift", "lab", "nginx", "pm2", project=fleet_ops)
        assert (code, drift["unreachable"]) == (3, {}), drift  # keepalive 64 is not what the repo says
        assert {(f["host"], f["deploy"]) for f in drift["findings"]} == {(h, "nginx") for h in HOSTS}
    finally:
        code, doc = opsrun_json("apply", "lab", "nginx", project=fleet_ops)
        assert code == 0, doc
    logins = console("web1", f"journalctl -u ssh --after-cursor={shlex.quote(since)} --no-pager -o cat").stdout
    accepted = [line for line in logins.splitlines() if line.startswith("Accepted ")]
    assert accepted and all(" for admin from " + "10.231.7.5 " in line for line in accepted), accepted


def test_a_host_whose_sudo_asks_for_a_password_fails_alone_before_its_drain(
    haproxy, console, fleet_ops, web_tier, behind_bastion
):
    console(
        "web2", "echo 'admin ALL=(ALL) PASSWD: ALL' > /etc/sudoers.d/zz-opsrun-test && chmod 440 /etc/sudoers.d/zz-*"
    )
    try:
        code, doc = opsrun_json("apply", "lab", "nginx", "-e", "nginx_keepalive_timeout=63", project=fleet_ops)
    finally:
        console("web2", "rm -f /etc/sudoers.d/zz-opsrun-test")
    assert code == 1, doc
    web2 = doc["hosts"]["web2"]
    assert (web2["outcome"], web2["stage"], web2["in_balancer"]) == ("failed", "connect", True), web2
    assert "web2: sudo asks for a password and none was given" in web2["reason"]
    assert doc["hosts"]["web1"]["outcome"] == "done" and doc["hosts"]["web3"]["outcome"] == "not_reached"
    assert all(haproxy.state(h).admin == "ready" for h in HOSTS)  # nobody left out of the balancer
    assert "keepalive_timeout 65;" in console("web2", "cat /etc/nginx/nginx.conf").stdout


def test_a_sudo_password_reaches_the_host_that_asks_and_no_file_or_shell_on_the_others(
    haproxy, console, bastion, web_tier, behind_bastion, tmp_path, monkeypatch
):
    """web2's sudo asks for admin's password; web1's and web3's do not (NOPASSWD), as on a fleet half moved
    to a new sudoers policy. With `_sudo_password` given, the rollout (leases, drains, pyinfra, health,
    verification) and a verify pass on all three, and the password is in no file those commands wrote. The
    password is a shell command that leaves a mark where a shell runs it."""
    mark = f"/tmp/opsrun-sudo-password-ran-{secrets.token_hex(4)}"
    password = f"touch {mark}"
    monkeypatch.setenv("OPSRUN_TEST_SUDO_PASSWORD", password)
    ops = fleet_project(tmp_path / "ops", bastion)
    with (ops / "group_data" / "lab.py").open("a") as f:
        f.write('import os\n_sudo_password = os.environ["OPSRUN_TEST_SUDO_PASSWORD"]\n')
    console(
        "web2",
        f"echo {shlex.quote(f'admin:{password}')} | chpasswd && "
        "echo 'admin ALL=(ALL) PASSWD: ALL' > /etc/sudoers.d/zz-opsrun-test && chmod 440 /etc/sudoers.d/zz-opsrun-test",
    )
    try:
        code, doc = opsrun_json("apply", "lab", "nginx", "-e", "nginx_keepalive_timeout=62", project=ops)
        assert code == 0, doc
        assert [doc["hosts"][h]["outcome"] for h in HOSTS] == ["done"] * 3
        code, verified = opsrun_json("verify", "lab", "nginx", project=ops)
        assert code == 0, verified
        assert password not in str(doc) + str(verified)
        for h in HOSTS:
            where = "/etc /var/lib/opsrun /tmp /root /home/admin"
            found = console(h, f"grep -rlF -- {shlex.quote(password)} {where}", check=False)
            assert (found.returncode, found.stdout) == (1, ""), (h, found)  # grep: 1 is "found nothing"
            assert console(h, f"test -e {mark}", check=False).returncode == 1, h
            assert "keepalive_timeout 62;" in console(h, "cat /etc/nginx/nginx.conf").stdout
    finally:
        console("web2", "rm -f /etc/sudoers.d/zz-opsrun-test && passwd -d admin >/dev/null")
        for h in HOSTS:
            console(h, f"rm -f {mark}")
        code, back = opsrun_json("apply", "lab", "nginx", project=fleet_project(tmp_path / "back", bastion))
        assert code == 0, back


def test_a_connection_that_skips_the_bastion_fails(tmp_path, web_tier, behind_bastion):
    direct = fleet_project(tmp_path / "ops", None)
    code, doc = opsrun_json("apply", "lab", "nginx", "--dry-run", project=direct)
    assert code == 1, doc
    assert all("Authentication error (username=admin" in (doc["hosts"][h]["error"] or "") for h in HOSTS), doc["hosts"]
    code, verified = opsrun_json("verify", "lab", "nginx", project=direct)
    assert code == 1, verified
    assert all(verified["hosts"][h]["status"] == "failed" for h in HOSTS), verified["hosts"]
    assert "Permission denied (publickey)" in str(verified["hosts"]["web1"])  # OpenSSH's words for sshd's refusal

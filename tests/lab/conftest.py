"""The lab session: three real hosts, made fresh for the session so that "the first apply changes every
host" holds. A lab that cannot start is an error here, never a skip: these tests are the proof."""

from __future__ import annotations

import os
import subprocess

import pytest

from opsrun.lab import Lab
from opsrun.lab.hosts import ssh as lab_ssh

pytestmark = pytest.mark.lab


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = Lab()
    try:
        lab.down()
        hosts = lab.up(3)
    except Exception as exc:
        pytest.fail(f"the lab could not start here (the lab tests need it; see the README): {exc}", pytrace=False)
    not_running = [h for h in hosts if h.state != "running"]
    assert not not_running, f"lab hosts not running after up: {not_running}"
    yield lab
    if not os.environ.get("OPSRUN_KEEP_LAB"):
        lab.down()


@pytest.fixture(scope="session")
def addresses(lab: Lab) -> dict[str, str]:
    return {h.name: h.address for h in lab.status()}


@pytest.fixture(scope="session")
def on_host(lab: Lab, addresses):
    """Run a shell command on a lab host as root; returns the CompletedProcess."""

    def run(host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = lab_ssh(lab.cfg, addresses[host], command, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{host}: `{command}` exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def web_tier(lab) -> None:
    """The demo app under PM2, then nginx in front of it: what HAProxy balances. The app goes first: the
    web group's rolling policy gates every batch on the app's /health."""
    from tests.conftest import opsrun_json

    for deploy in ("pm2", "nginx"):
        code, doc = opsrun_json("apply", "lab", deploy)
        assert code == 0, doc

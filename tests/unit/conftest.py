"""Unit tests never reach a host: the SSH guard (tests/unit/ssh_guard.py) is on for every one of them."""

from __future__ import annotations

import pytest

from tests.unit import ssh_guard


@pytest.fixture(autouse=True)
def host_guard():
    """The attempts to reach a host made during the test (each one also raised HostReached); none allowed."""
    with ssh_guard.installed() as attempts:
        yield attempts
    assert not attempts, f"the test tried to reach hosts: {attempts}"


@pytest.fixture
def no_host_touched(monkeypatch):
    """The engine and the verifier replaced by a function that fails the test: nothing may reach a host."""
    from opsrun import engine
    from opsrun.verification import verify

    def touched(*args, **kwargs):
        raise AssertionError("a host was touched")

    monkeypatch.setattr(engine, "run_deploy", touched)
    monkeypatch.setattr(verify, "run_suite", touched)
    monkeypatch.setattr(verify, "Verifier", touched)


@pytest.fixture
def plain_project(project_copy):
    """The repo's ops content without a rolling policy or balancer: a plain parallel apply."""
    for path, line in (("group_data/web.py", "rolling = None"), ("inventories/lab.py", 'all[1].pop("balancer")')):
        (project_copy / path).write_text((project_copy / path).read_text() + f"\n{line}\n")
    return project_copy

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

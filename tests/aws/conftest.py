"""AWS APIs for the tests: moto's server on loopback, and credentials that can only reach it."""

from __future__ import annotations

import pytest

from tests.conftest import REGION, moto_url  # noqa: F401 - the fixture, for this folder's tests


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)

"""The store tests' own PostgreSQL server, which they stop and start (the session's, in tests/conftest.py,
serves the other tests and is never stopped)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import running_cluster


@pytest.fixture(scope="session")
def cluster():
    """A PostgreSQL server of the store tests' own, which its tests stop and start: (the cluster, its URL)."""
    with running_cluster("opsrun-pg-away-") as (pg, url, _password):
        yield pg, url


@pytest.fixture
def pg(cluster, tmp_path):
    """That server, running when the test starts and when it ends, with a fresh database for the test:
    (the cluster, the database's URL, a state folder)."""
    import psycopg

    server, url = cluster
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield server, url.rsplit("/", 1)[0] + f"/{name}", tmp_path / ".opsrun"
    if not _answers(url):
        server.start()


def _answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True

"""The repository's own group_data describes the lab's whole stack: every host of the lab inventory passes
every settings schema, the data tier and `dr` included, and `dr-test` finds the systems it checks. Loaded
from a lab.json of three hosts in a temporary lab directory: nothing connects."""

from __future__ import annotations

import json

import pytest

from opsrun import dr, settings
from opsrun.errors import ConfigError
from opsrun.model import inventory, secrets
from opsrun.model.project import Project
from tests.conftest import REPO

HOSTS = ["web1", "web2", "web3"]


@pytest.fixture
def lab_inventory(tmp_path, monkeypatch):
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "lab.json").write_text(
        json.dumps(
            {
                "hosts": [{"name": h, "address": f"10.231.7.{11 + i}"} for i, h in enumerate(HOSTS)],
                "apt_repository": "deb [trusted=yes] http://10.231.7.1:8080/ ./",
                "haproxy": {"socket": str(lab_dir / "haproxy" / "admin.sock")},
            }
        )
    )
    monkeypatch.setenv("OPSRUN_LAB_DIR", str(lab_dir))
    return inventory.load(Project(REPO), "lab"), lab_dir


def test_every_lab_host_passes_every_schema(lab_inventory):
    inv, _lab_dir = lab_inventory
    assert list(inv.hosts) == HOSTS
    settings.check_hosts(inv, list(inv.hosts))


def test_the_lab_runs_the_whole_stack(lab_inventory):
    inv, _lab_dir = lab_inventory
    assert inv.select("web") == inv.select("redis") == inv.select("mongo") == HOSTS
    ports = [p for h in HOSTS for p in inv.hosts[h].data["redis_cluster_ports"]]
    assert ports == list(range(7000, 7006))
    assert {inv.hosts[h].data["mongo_replicaset_install"] for h in HOSTS} == {"present"}
    assert all(inv.hosts[h].data["apt_repositories"] for h in HOSTS)  # opsrun-demo and the mongod stand-in


def test_dr_settings_cover_every_system_with_the_lab_paths(lab_inventory):
    inv, lab_dir = lab_inventory
    found = dr.settings(inv, HOSTS, settings.check_hosts(inv, HOSTS))
    assert dr.systems_of(found) == ["backups", "postgres", "redis", "mongo"]
    assert found.postgres is not None and found.postgres.dumps == f"{lab_dir}/postgres/dumps/*.dump"
    assert found.backups[0].files == found.postgres.dumps
    assert set(dr.targets(found, dr.systems_of(found))) == {"backups", "postgres", "redis", "mongo"}


def test_dr_test_names_every_secret_it_needs(lab_inventory, monkeypatch):
    inv, _lab_dir = lab_inventory
    for name in ("OPSRUN_PG_PRIMARY_URL", "OPSRUN_PG_REPLICA_URL", "OPSRUN_REDIS_PASSWORD", "OPSRUN_MONGO_KEYFILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"OPSRUN_PG_(PRIMARY|REPLICA)_URL"):
        secrets.require(inv, HOSTS, ["dr", "redis_cluster", "mongo_replicaset"])
    env = {
        "OPSRUN_PG_PRIMARY_URL": "postgresql://opsrun:pw@127.0.0.1:15432/opsrun",
        "OPSRUN_PG_REPLICA_URL": "postgresql://opsrun:pw@127.0.0.1:15433/opsrun",
        "OPSRUN_REDIS_PASSWORD": "r",
        "OPSRUN_MONGO_KEYFILE": "k",
    }
    found = secrets.require(inv, HOSTS, ["dr", "redis_cluster", "mongo_replicaset"], environ=env)
    assert set(found) >= set(env)

"""What "done" means for deploys/redis_cluster.py, asked of each node on the host with redis-cli: the
cluster is ok with all 16384 slots served, the configured number of masters each with a connected replica,
no node failing, every node's running settings as configured, every node's unit enabled and running.

The password is read on the host from the cluster's auth file, so it is never part of a command line
that a failed test would print."""

import pytest

from opsrun import answers

CLI = "REDISCLI_AUTH=$(awk '/^requirepass/ {print $2}' /etc/redis/cluster-auth.conf) redis-cli --no-auth-warning"


@pytest.fixture(scope="module")
def redis(host, host_data):
    """redis-cli on the host, its answer checked before it is read (a refused login says so)."""
    source = answers.secret_source(host_data.get("redis_cluster_auth"), "requirepass")
    name = host.backend.get_hostname()

    def ask(port, *args):
        cmd = host.run(f"{CLI} -p %s " + " ".join(["%s"] * len(args)), str(port), *map(str, args))
        return answers.redis_reply(cmd.stdout, cmd.stderr, cmd.rc, where=f"{name}:{port}", source=source)

    return ask


@pytest.fixture(scope="module")
def ports(host_data):
    found = host_data.get("redis_cluster_ports", [])
    assert found, "no redis_cluster_ports for this host"
    return found


def cluster_nodes(redis, host, port):
    return answers.cluster_nodes(redis(port, "cluster", "nodes"), f"{host.backend.get_hostname()}:{port}")


def test_units_are_enabled_and_running(host, ports):
    for port in ports:
        unit = host.service(f"redis-server@{port}")
        assert (unit.is_enabled, unit.is_running) == (True, True), port


def test_cluster_state_is_ok_with_every_slot_served(host, ports, redis):
    for port in ports:
        info = answers.cluster_info(redis(port, "cluster", "info"), f"{host.backend.get_hostname()}:{port}")
        assert (info["cluster_state"], info["cluster_slots_assigned"], info["cluster_slots_ok"]) == (
            "ok",
            "16384",
            "16384",
        ), port


def test_masters_and_their_connected_replicas(host, ports, host_data, redis):
    replicas = host_data.get("redis_cluster_replicas", 1)
    nodes = cluster_nodes(redis, host, ports[0])
    masters = [n for n in nodes if "master" in n["flags"]]
    assert len(masters) == len(nodes) // (replicas + 1)
    for m in masters:
        connected = [n for n in nodes if n["master"] == m["id"] and n["link"] == "connected"]
        assert len(connected) >= replicas, f"master {m['id']} has {len(connected)} connected replica(s)"


def test_no_node_is_failing(host, ports, redis):
    failing = [n["id"] for n in cluster_nodes(redis, host, ports[0]) if n["flags"] & {"fail", "fail?", "pfail"}]
    assert failing == []


def test_running_settings_are_as_configured(host, ports, host_data, redis):
    want = host_data.get("redis_cluster_settings", {})
    for port in ports:
        where = f"{host.backend.get_hostname()}:{port}"
        for key in ("maxmemory-policy", "appendonly", "tcp-backlog", "timeout", "tcp-keepalive", "maxclients"):
            if key in want:
                value = answers.config_value(redis(port, "config", "get", key), key, where)
                assert value == str(want[key]), f"{port} {key}"
        if "maxmemory" in want:
            value = answers.config_value(redis(port, "config", "get", "maxmemory"), "maxmemory", where)
            assert int(value) == to_bytes(want["maxmemory"]), f"{port} maxmemory"


def to_bytes(size):
    text = str(size).lower()
    units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
    return int(text[:-2]) * units[text[-2:]] if text[-2:] in units else int(text)

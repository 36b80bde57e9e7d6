"""The local lab made by `opsrun lab up`: hosts web1..webN booted with systemd-nspawn on this machine.

Host names and addresses come from the lab's lab.json; the lab's own SSH key and known_hosts file are
used, with strict host key checking (the lab wrote every host's keys there when it made them).
"""

import json as _json
import os as _os
from pathlib import Path as _Path

_lab_dir = _Path(_os.environ.get("OPSRUN_LAB_DIR", "/var/lib/opsrun/lab"))
try:
    _lab = _json.loads((_lab_dir / "lab.json").read_text())
except FileNotFoundError:  # no lab yet: describe the default one, so that errors name real hosts
    _lab = {"hosts": [{"name": f"web{i}", "address": f"10.231.7.{10 + i}"} for i in (1, 2, 3)]}

web = [(_h["name"], {"ssh_hostname": _h["address"]}) for _h in _lab["hosts"]]

# The data tier on the first three hosts: a Redis Cluster of 2 ports on each (7000-7005, as in the seed
# runbook) and a MongoDB replica set (the lab has no MongoDB package: mongod is "already installed", the
# protocol-level stand-in of tests/standins/ in the tests).
redis = [
    (_h["name"], {"ssh_hostname": _h["address"], "redis_cluster_ports": [7000 + 2 * _i, 7001 + 2 * _i]})
    for _i, _h in enumerate(_lab["hosts"][:3])
]
mongo = [
    (_h["name"], {"ssh_hostname": _h["address"], "mongo_replicaset_install": "present"}) for _h in _lab["hosts"][:3]
]

all = (  # noqa: A001 - pyinfra's name for the group of every host and its data
    [_h["name"] for _h in _lab["hosts"]],
    {
        "ssh_user": "root",
        "ssh_key": str(_lab_dir / "keys" / "id_ed25519"),
        "ssh_known_hosts_file": str(_lab_dir / "known_hosts"),
        "ssh_strict_host_key_checking": "yes",
        "ssh_connect_retries": 1,
        # the lab's own apt repository (opsrun-demo, new versions with `opsrun lab publish`)
        "apt_repositories": [_lab["apt_repository"]] if "apt_repository" in _lab else [],
        # HAProxy in front of the web hosts, on the lab bridge; its servers are named after the hosts
        "balancer": {
            "type": "haproxy",
            "socket": _lab.get("haproxy", {}).get("socket", str(_lab_dir / "haproxy" / "admin.sock")),
            "backend": "web",
        },
    },
)

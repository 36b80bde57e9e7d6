"""Every host of every inventory: the monthly DR test's settings (`opsrun dr-test`, src/opsrun/dr/).

For the lab: its Redis Cluster and MongoDB replica set (inventories/lab.py places them), and a PostgreSQL
primary with a streaming replica on the controller's loopback, started by `opsrun lab postgres`, which
also writes the nightly pg_dump the backup check and the restore drill read; `--drill` fails that pair over
and puts it back. The database URLs hold a password: they come from the operator's environment
(secret_env), never from this file. An inventory named production refuses the failover drill (dr.production).
"""

import os as _os

__all__ = ["dr"]  # the data of this file; the helper below is not
_lab_dir = _os.environ.get("OPSRUN_LAB_DIR", "/var/lib/opsrun/lab")

dr = {
    "targets": {"rto_minutes": 15, "rpo_minutes": 5},
    # a cache and a session store: back within a minute; the RPO probes' targets stay at 5 minutes
    "systems": {"redis": {"rto_minutes": 1}, "mongo": {"rto_minutes": 1}},
    "backups": [{"name": "pg_dump files", "files": f"{_lab_dir}/postgres/dumps/*.dump", "max_age_hours": 26}],
    "postgres": {
        # scratch: where the restore drill creates (and drops) its database; the primary serves
        "secret_env": {
            "primary": "OPSRUN_PG_PRIMARY_URL",
            "replica": "OPSRUN_PG_REPLICA_URL",
            "scratch": "OPSRUN_PG_PRIMARY_URL",
        },
        "tables": ["users", "orders"],
        "max_lag_seconds": 30,
        "max_lag_bytes": 16 * 1024 * 1024,
        "dumps": f"{_lab_dir}/postgres/dumps/*.dump",
        # with --drill: the primary crashed, the replica promoted (RTO, RPO), the pair rebuilt and switched back
        "failover": {
            "primary_data": f"{_lab_dir}/postgres/primary/data",
            "replica_data": f"{_lab_dir}/postgres/replica/data",
        },
    },
    "redis": True,  # the inventory's redis group (redis_cluster_ports), password from redis_cluster_auth
    "mongo": True,  # the inventory's mongo group (mongo_replicaset_*)
}

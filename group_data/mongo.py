"""The MongoDB replica set (deploys/mongo_replicaset.py), with the seed runbook's tuning as defaults."""

mongo_replicaset_name = "rs0"
mongo_replicaset_install = "repository"  # MongoDB's own apt repository; "present": mongod is already installed
mongo_replicaset_version = "7.0"
mongo_replicaset_port = 27017
mongo_replicaset_bind_ip = "0.0.0.0"  # noqa: S104 - members and clients connect over the network
mongo_replicaset_cache_size_gb = 1
mongo_replicaset_max_incoming_connections = 65536
mongo_replicaset_slow_op_threshold_ms = 100
mongo_replicaset_lag_threshold_seconds = 10
# The keyfile members authenticate each other with: the value of the operator's environment variable.
mongo_replicaset_auth = {"secret_env": {"keyfile": "OPSRUN_MONGO_KEYFILE"}}

# One host at a time, the primary's host last (it steps down once, after its secondaries restarted). No
# verify suite between batches: from nothing the set only exists once the last host is up, and each member
# restart already waits for the set to be healthy again.
mongo_replicaset_rolling = {
    "serial": 1,
    "max_fail": 0,
    "verify": False,
    "reboot": "never",
    "last": {"mongo_primary": 27017},
}
mongo_replicaset_balancer = None

"""The Redis Cluster (deploys/redis_cluster.py): 3 masters with a replica each, the seed runbook's tuning."""

redis_cluster_replicas = 1
redis_cluster_node_timeout_ms = 3000
redis_cluster_settings = {
    "maxmemory": "64mb",
    "maxmemory-policy": "allkeys-lru",
    "save": "900 1 300 10 60 10000",
    "appendonly": "yes",
    "tcp-backlog": 511,
    "timeout": 0,
    "tcp-keepalive": 300,
    "maxclients": 10000,
}
# requirepass and masterauth: the value of the operator's environment variable, never written here
redis_cluster_auth = {"secret_env": {"requirepass": "OPSRUN_REDIS_PASSWORD"}}

# One host at a time, its replicas before its master (a master fails over first); no load balancer:
# clients follow the cluster's own redirections. No verify suite between batches: from nothing the cluster
# only exists once the last host is up, and each node restart already waits for the cluster to be ok.
redis_cluster_rolling = {"serial": 1, "max_fail": 0, "verify": False, "reboot": "never"}
redis_cluster_balancer = None

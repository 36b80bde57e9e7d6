"""A Redis Cluster over the hosts of the `redis` group: each host runs its `redis_cluster_ports` as
redis-server@PORT (Debian's template unit), configured from group_data; the cluster is created when none
exists and reconciled when a node was lost; a settings change restarts one node at a time, replicas first,
a master only after a failover to its replica. Checked by verify/redis_cluster/.

Settings (group_data, `redis_cluster_*`): redis_cluster_ports (per host), redis_cluster_replicas,
redis_cluster_settings (maxmemory, maxmemory-policy, save, appendonly, tcp-backlog, timeout,
tcp-keepalive, maxclients, ...), redis_cluster_node_timeout_ms, redis_cluster_auth {secret_env:
{requirepass: where it is kept: an environment variable's NAME, {"secretsmanager": ID, "key": K}
or {"ssm": NAME}; previous: the same, optional, for the password the nodes still run with when the auth
file no longer holds it}}. A changed password is rotated live (deploys/_redis_auth.py). Read through their schema
(opsrun.settings.models.RedisSettings), in a plain `pyinfra` run too.
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import apt, files, systemd

from deploys._ops import render, secret_file
from deploys._redis import cluster_reconcile, rolling_restart
from deploys._redis_auth import rotate_password
from opsrun import secret_sources
from opsrun import settings as schemas

redis_settings = schemas.for_host(host, "redis_cluster")
REQUIREPASS = "redis_cluster_auth.secret_env.requirepass"
settings = dict(redis_settings.settings)  # group_data/redis.py: the seed runbook's tuning
replicas = redis_settings.replicas
ports = list(redis_settings.ports)
secret_env = redis_settings.auth.secret_env if redis_settings.auth else {}
password = (
    secret_sources.read(secret_env["requirepass"], "group_data", REQUIREPASS) if "requirepass" in secret_env else None
)
AUTH = "/etc/redis/cluster-auth.conf"

apt.packages(name="Redis", packages=["redis-server", "redis-tools"], update=True, cache_time=24 * 3600)

systemd.service(
    name="The distribution's single instance stays off", service="redis-server", running=False, enabled=False
)

rotate_password(name="Nodes run the password of group_data (changed live)", replicas=replicas)

secret_file(
    name="Cluster password (from where group_data says it is kept)",
    dest=AUTH,
    content=f"requirepass {password}\nmasterauth {password}\n" if password else "# no password\n",
    mode="640",
)
files.file(name="Cluster password file readable by redis", path=AUTH, group="redis", mode="640")

for port in ports:
    files.directory(name=f"{port}: data folder", path=f"/var/lib/redis/{port}", user="redis", group="redis", mode="750")
    files.put(
        name=f"{port}: configuration",
        src=StringIO(
            render(
                "redis/cluster-node.conf.j2",
                port=port,
                address=schemas.for_host(host, "ssh").ssh_hostname or host.name,
                settings=settings,
                node_timeout_ms=redis_settings.node_timeout_ms,
                auth_file=AUTH,
            )
        ),
        dest=f"/etc/redis/redis-{port}.conf",
        user="redis",
        group="redis",
        mode="640",
    )
    systemd.service(
        name=f"{port}: redis-server@{port} enabled and running",
        service=f"redis-server@{port}",
        running=True,
        enabled=True,
    )

rolling_restart(
    name="Nodes run the desired settings (replicas first, masters after a failover)",
    settings=settings,
    replicas=replicas,
)

cluster_reconcile(name="Cluster matches the topology", replicas=replicas)

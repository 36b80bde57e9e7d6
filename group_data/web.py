"""The web tier: nginx in front of the app on each host."""

nginx_listen_port = 80
nginx_server_name = "_"
nginx_worker_processes = "auto"
nginx_worker_connections = 1024
nginx_keepalive_timeout = 65
# Empty: nginx serves its own page. The PM2 deploy points this at the local app instances.
nginx_upstream_servers: list[str] = []
nginx_upstream_method = "least_conn"
nginx_extra_directives: list[str] = []

# The placeholder app behind the balancer (deploys/webapp.py); the PM2 deploy replaces it.
webapp_version = "1"
webapp_port = 3001
webapp_startup_seconds = 1.0
webapp_response_ms = 10

# Rolling apply over the web tier: one host at a time behind the balancer (the lab's is in inventories/lab.py).
rolling = {
    "serial": 1,
    "max_fail": 0,
    "drain_timeout": 30,
    "healthy_timeout": 30,
    "health": {"http": "http://{address}:3001/health", "status": 200, "timeout": 30},
    "verify": True,  # the deploy's own suite, verify/<deploy>/, after each batch
    "reboot": "if-needed",  # a package that asks for a reboot gets one, inside drain -> health
}

# OS patching (deploys/patching.py): everything pending, configuration files kept, nothing held.
patching_upgrade = "all"  # or "origins": only packages from patching_origins
patching_origins = ["Debian-Security:*"]
patching_hold: list[str] = []
patching_restart_services: list[str] = []

"""The web tier: nginx on :80 in front of the Node app (PM2 cluster on :3001) on each host."""

nginx_listen_port = 80
nginx_server_name = "_"
nginx_worker_processes = "auto"
nginx_worker_connections = 1024
nginx_keepalive_timeout = 65
# The app's PM2 cluster on this host (pm2_apps below); empty: nginx serves its own page.
nginx_upstream_servers = ["127.0.0.1:3001"]
nginx_upstream_method = "least_conn"
nginx_extra_directives: list[str] = []

# Node apps under PM2 (deploys/pm2.py): the demo app of apps/demo in cluster mode on port 3001.
pm2_version = "6.0.9"
pm2_logrotate = {"version": "3.0.0", "max_size": "100M", "retain": 30, "compress": True}
pm2_apps = [
    {
        "name": "demo",
        "source": "apps/demo",  # a folder of this repo, synced to a release under cwd (cwd/current runs)
        "script": "server.js",
        "cwd": "/opt/apps/demo",
        "instances": 2,
        "exec_mode": "cluster",
        "max_memory_restart": "200M",
        "env": {"PORT": 3001, "APP_VERSION": "1", "STARTUP_DELAY_MS": 500, "RESPONSE_DELAY_MS": 5},
        # app variable -> the operator's environment variable that holds the value (never the value itself)
        "secret_env": {"API_TOKEN": "OPSRUN_DEMO_API_TOKEN"},
    }
]

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

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

"""nginx: installed from the distribution, configured from group_data, validated with `nginx -t` before
anything is reloaded, reloaded only when its configuration changed, enabled and running.

Settings (group_data, `nginx_*`): listen_port, server_name, upstream_servers (empty: serve a static page),
upstream_method, worker_processes, worker_connections, keepalive_timeout, extra_directives (raw lines for
the server block). Checked by verify/nginx/. The settings are read through their schema
(opsrun.settings.models.NginxSettings): a bad value stops a plain `pyinfra` run here, as it stops opsrun.
"""

from pyinfra import host
from pyinfra.operations import apt, files, systemd

from deploys._ops import config_files, render
from opsrun import settings as schemas

settings = {**schemas.for_host(host, "nginx").model_dump(), "hostname": host.name}

apt.packages(name="Install nginx", packages=["nginx"], update=True, cache_time=24 * 3600)

files.directory(name="Site root", path="/var/www/opsrun", mode="755")

files.link(name="Disable the distribution's default site", path="/etc/nginx/sites-enabled/default", present=False)

config = config_files(
    name="nginx configuration (validated with nginx -t)",
    files={
        "/etc/nginx/nginx.conf": render("nginx/nginx.conf.j2", **settings),
        "/etc/nginx/sites-enabled/opsrun.conf": render("nginx/site.conf.j2", **settings),
        "/var/www/opsrun/index.html": render("nginx/index.html.j2", **settings),
    },
    check="nginx -t -q",
)

systemd.service(name="nginx enabled and running", service="nginx", running=True, enabled=True)

systemd.service(
    name="Reload nginx when its configuration changed", service="nginx", reloaded=True, _if=config.did_change
)

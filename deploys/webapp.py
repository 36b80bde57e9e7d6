"""A small HTTP app on each web host, for the balancer to balance: /opt/opsrun-app/app.py as the systemd
service opsrun-app, answering on webapp_port with /health (status, version, uptime). A new version restarts
the app, which is unavailable while it warms up: roll it out behind the balancer. Checked by verify/webapp/.

Settings (group_data): webapp_version, webapp_port, webapp_startup_seconds, webapp_response_ms.
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, systemd

from deploys._ops import render

settings = {
    "version": host.data.get("webapp_version", "1"),
    "port": host.data.get("webapp_port", 3001),
    "startup_seconds": host.data.get("webapp_startup_seconds", 1.0),
    "response_ms": host.data.get("webapp_response_ms", 10),
}

files.directory(name="App folder", path="/opt/opsrun-app", mode="755")

app = files.put(
    name="App code", src=StringIO(render("webapp/app.py.j2", **settings)), dest="/opt/opsrun-app/app.py", mode="644"
)

unit = files.put(
    name="App unit",
    src=StringIO(render("webapp/opsrun-app.service.j2")),
    dest="/etc/systemd/system/opsrun-app.service",
    mode="644",
)

systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)

systemd.service(name="App enabled and running", service="opsrun-app", running=True, enabled=True)

systemd.service(name="Restart the app for a new version", service="opsrun-app", restarted=True, _if=[app.did_change])

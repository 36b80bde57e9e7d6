"""OS patching for Debian/Ubuntu hosts: extra apt repositories, held packages, pending upgrades applied
non-interactively (existing configuration files kept), and the services that need it restarted.

Settings (group_data): apt_repositories (deb lines), patching_upgrade ("all" | "origins"), patching_origins
(origin patterns, e.g. "Debian-Security:*"), patching_hold (packages kept at their version),
patching_restart_services (restarted after an upgrade, unless needrestart is installed and does it).
The reboot, when a package asks for one (/var/run/reboot-required), is the rolling executor's: drained,
rebooted, back, health-gated (group_data rolling.reboot). Checked by verify/patching/. The settings are read
through their schema (opsrun.settings.models.PatchingSettings), in a plain `pyinfra` run too.
"""

from io import StringIO

from pyinfra import host
from pyinfra.facts.server import Which
from pyinfra.operations import files, systemd

from deploys._ops import held_packages, upgrade_packages
from opsrun import settings as schemas

patching = schemas.for_host(host, "patching")

files.put(
    name="Extra apt repositories",
    src=StringIO("".join(f"{line}\n" for line in patching.apt_repositories)),
    dest="/etc/apt/sources.list.d/opsrun.list",
    mode="644",
)

held_packages(name="Held packages", packages=list(patching.hold))

upgrade = upgrade_packages(name="Upgrade packages", mode=patching.upgrade, origins=list(patching.origins))

if not host.get_fact(Which, command="needrestart"):
    for service in patching.restart_services:
        systemd.service(
            name=f"Restart {service} after an upgrade", service=service, restarted=True, _if=upgrade.did_change
        )

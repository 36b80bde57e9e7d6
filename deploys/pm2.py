"""Node apps under PM2: Node.js and npm from the distribution, PM2 pinned from npm, the apps of group_data
started from a rendered ecosystem file, kept across reboots (pm2-root.service), logs rotated by
pm2-logrotate. Checked by verify/pm2/.

An app's code is a release: CWD/releases/ID (ID: a hash of the app folder's files), and CWD/current points
at the one PM2 runs. The release it replaces stays beside it (older ones are removed), so a rollback to the
previous revision switches CWD/current back without copying the code again.

An app is started or reloaded (`pm2 startOrReload`, graceful in cluster mode) only when its ecosystem,
code (its current release) or secrets changed, or when it does not have its instances online; then
`pm2 save`. A process that PM2 runs from anywhere else (an app deployed before releases), or whose env
loses a variable (PM2's reload would keep the old value), is deleted and started again. Apps that are no
longer in group_data are deleted.

Settings (group_data, `pm2_*`): pm2_version, pm2_logrotate {version, max_size, retain, compress, ...},
pm2_apps [{name, source (a folder of the ops repo), script, cwd, instances, exec_mode, env,
secret_env {VAR: where it is kept: NAME of the operator's environment variable,
{"secretsmanager": ID, "key": K} or {"ssm": NAME}}, max_memory_restart}].
Secret values never come from group_data: opsrun checks every secret_env name is set before any host
is touched, and writes the values only to /etc/opsrun/pm2/<app>.secrets.json (mode 600) on the hosts.
The settings are read through their schema (opsrun.settings.models.Pm2Settings), with the plain-text
secret rule (`not_secret` says an env name holds plain configuration), in a plain `pyinfra` run too.
"""

import json
import shlex
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from deploys._ops import (
    Pm2State,
    current_release,
    npm_global,
    online_instances,
    pm2_module,
    release_of,
    render,
    secret_file,
)
from opsrun import secret_sources
from opsrun import settings as schemas

ECOSYSTEM = "/etc/opsrun/pm2/ecosystem.config.js"
UNIT = "/etc/systemd/system/pm2-root.service"

pm2 = schemas.for_host(host, "pm2")
version = pm2.version
# pm2-logrotate's own four settings always, then the ones group_data sets (its schema's order)
logrotate = {"version": "3.0.0", "max_size": "100M", "retain": 30, "compress": True}
logrotate.update(pm2.logrotate.model_dump(exclude_unset=True))
apps = [
    {
        **app.model_dump(),
        "home": app.cwd,
        "cwd": f"{app.cwd}/current",  # PM2 runs the current release
        "release": release_of(Path(host.state.cwd or ".") / app.source),
        "secrets_file": f"/etc/opsrun/pm2/{app.name}.secrets.json",
        "names_file": f"/etc/opsrun/pm2/{app.name}.env-names",  # the variables opsrun gave it, by name
    }
    for app in pm2.apps
]

apt.packages(name="Node.js and npm", packages=["nodejs", "npm"], update=True, cache_time=24 * 3600)

npm_global(name=f"PM2 {version}", package="pm2", version=version)

if not host.get_fact(File, path=UNIT):
    server.shell(name="PM2 starts at boot (pm2 startup systemd)", commands=["pm2 startup systemd -u root --hp /root"])

systemd.service(name="PM2 daemon enabled and running", service="pm2-root", running=True, enabled=True)

pm2_module(
    name="pm2-logrotate installed and configured",
    module="pm2-logrotate",
    version=logrotate.pop("version"),
    settings=logrotate,
)

files.directory(name="Ecosystem folder", path="/etc/opsrun/pm2", mode="700")

changes = []
for i, app in enumerate(apps):
    files.directory(name=f"{app['name']}: releases folder", path=f"{app['home']}/releases", mode="755")
    changes.append(
        files.sync(
            name=f"{app['name']}: release {app['release']} from {app['source']}",
            src=app["source"],
            dest=f"{app['home']}/releases/{app['release']}",
            delete=True,
        )
    )
    changes.append(
        current_release(
            name=f"{app['name']}: release {app['release']} current, the one before kept",
            home=app["home"],
            release=app["release"],
        )
    )
    secrets = {
        var: secret_sources.read(ref, "group_data", f"pm2_apps[{i}].secret_env.{var}")
        for var, ref in app["secret_env"].items()
    }
    changes.append(
        secret_file(
            name=f"{app['name']}: secrets from the environment ({', '.join(sorted(secrets)) or 'none'})",
            dest=app["secrets_file"],
            content=json.dumps(secrets, sort_keys=True),
        )
    )

changes.append(
    files.put(
        name="Ecosystem file", src=StringIO(render("pm2/ecosystem.config.js.j2", apps=apps)), dest=ECOSYSTEM, mode="600"
    )
)

state = host.get_fact(Pm2State)
# PM2 keeps a variable that the reloaded ecosystem no longer sets (a reload merges the new env over the old),
# and what it got from the shell that started it is mixed in: which variables opsrun gave each app is kept in
# a file beside its secrets, and an app that loses one is deleted and started again without it.
stale = {}
for app in apps:
    given = host.get_fact(Command, f"cat {shlex.quote(app['names_file'])} 2>/dev/null || true")
    stale[app["name"]] = sorted(set((given or "").split()) - {*app["env"], *app["secret_env"]})
runs_from = {
    a["name"]: {f"{a['cwd']}/{a['script']}", f"{a['home']}/releases/{a['release']}/{a['script']}"} for a in apps
}
elsewhere = sorted(
    {p["name"] for p in state["processes"] if p["name"] in runs_from and p.get("exec_path") not in runs_from[p["name"]]}
)
restart = sorted({*elsewhere, *(n for n, lost in stale.items() if lost)})
if restart:
    why = [f"{n} runs outside its current release" for n in elsewhere]
    why += [f"{n} loses {', '.join(lost)}" for n, lost in stale.items() if lost]
    server.shell(
        name=f"Stop the apps to start again ({'; '.join(why)})",
        commands=[f"pm2 delete {shlex.quote(n)}" for n in restart],
    )
missing = [a["name"] for a in apps if a["name"] in restart or online_instances(state, a["name"]) != a["instances"]]
reload_apps = f"pm2 startOrReload {ECOSYSTEM} --update-env && pm2 save"
if missing:
    server.shell(name=f"Start or reload the apps ({', '.join(missing)} not fully online)", commands=[reload_apps])
else:
    server.shell(
        name="Start or reload the apps (their files changed)", commands=[reload_apps], _if=any_changed(*changes)
    )

for app in apps:
    files.put(
        name=f"{app['name']}: the names of the variables it was given",
        src=StringIO("".join(f"{n}\n" for n in sorted({*app["env"], *app["secret_env"]}))),
        dest=app["names_file"],
        mode="600",
    )

gone = sorted({p["name"] for p in state["processes"] if not p["module"]} - {a["name"] for a in apps})
if gone:
    server.shell(
        name=f"Delete apps no longer in group_data ({', '.join(gone)})",
        commands=[*(f"pm2 delete {shlex.quote(n)}" for n in gone), "pm2 save"],
    )

"""A MongoDB replica set over the hosts of the `mongo` group: mongod from MongoDB's own apt repository (or
already installed, `mongo_replicaset_install = "present"`), mongod.conf rendered from group_data, keyfile
authentication between members with the key from the operator's environment, the service enabled and
running, the set initiated or reconciled (replSetReconfig) from pymongo. A changed configuration restarts
the member, stepping a primary down first. A changed key is rotated live, as MongoDB documents it: every
member restarted with both keys, then with the new one alone (deploys/_mongo_keyfile.py). Checked by
verify/mongo_replicaset/.

Settings (group_data, `mongo_replicaset_*`): name, install (repository | present), version, port, bind_ip,
cache_size_gb, max_incoming_connections, slow_op_threshold_ms, lag_threshold_seconds, priority and votes
(per host), auth {secret_env: {keyfile: where the key is kept: an environment variable's NAME,
{"secretsmanager": ID, "key": K} or {"ssm": NAME}}}. Read through their
schema (opsrun.settings.models.MongoSettings), in a plain `pyinfra` run too.
"""

from io import StringIO

from pyinfra import host
from pyinfra.facts.server import Which
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import apt, files, server, systemd

from deploys import _mongo_keyfile as keys
from deploys._mongo import replicaset_reconcile, restart_member
from deploys._ops import render, secret_file
from opsrun import secret_sources
from opsrun import settings as schemas

mongo = schemas.for_host(host, "mongo_replicaset")
name = mongo.name
port = mongo.port
version = mongo.version
install = mongo.install
secret_env = mongo.auth.secret_env if mongo.auth else {}
KEYFILE = keys.KEYFILE
address = f"{schemas.for_host(host, 'ssh').ssh_hostname or host.name}:{port}"

if install == "repository":
    apt.key(
        name=f"MongoDB {version} signing key",
        src=f"https://pgp.mongodb.com/server-{version}.asc",
    )
    apt.repo(
        name=f"MongoDB {version} repository",
        src=f"deb https://repo.mongodb.org/apt/debian bookworm/mongodb-org/{version} main",
        filename=f"mongodb-org-{version}",
    )
    apt.packages(name=f"MongoDB {version}", packages=[f"mongodb-org={version}.*"], update=True)
elif not host.get_fact(Which, command="mongod"):
    server.shell(
        name="mongod is installed (mongo_replicaset_install = present)",
        commands=[
            "echo 'no mongod on this host: install it, or set mongo_replicaset_install = \"repository\"' >&2; exit 1"
        ],
    )

ref = secret_env["keyfile"]
keyfile = secret_sources.read(ref, "group_data", keys.FIELD) + "\n"
new_key = keys.checked(keyfile, secret_sources.label(secret_sources.parse(ref, "group_data", keys.FIELD)))
running = (host.get_fact(SystemdStatus, services="mongod") or {}).get("mongod.service", False)
rotation = keys.plan(keys.on_disk(), new_key, running)
if rotation is None or not rotation.restarts:  # no member to move over: the file as it should be
    secret_file(
        name="Member keyfile (from where group_data says it is kept)", dest=KEYFILE, content=keyfile, mode="400"
    )
else:  # the set runs another key: both keys on every member, one restart at a time, then the new one alone
    keys.every_member_here()
    if rotation.both:
        keys.restart_with_keyfile(
            name="Keyfile with the old and the new key (members restarted one at a time)",
            content=keys.render(rotation.both),
            address=address,
            _serial=True,
        )
    keys.restart_with_keyfile(
        name="Keyfile with the new key alone (members restarted one at a time)",
        content=keyfile,
        address=address,
        after_first_pass=True,
        _serial=True,
    )
files.file(name="Keyfile owned by mongodb", path=KEYFILE, user="mongodb", group="mongodb", mode="400")
files.directory(name="Data folder", path="/var/lib/mongodb", user="mongodb", group="mongodb", mode="750")
files.directory(name="Log folder", path="/var/log/mongodb", user="mongodb", group="mongodb", mode="750")

conf = files.put(
    name="mongod.conf",
    src=StringIO(
        render(
            "mongo/mongod.conf.j2",
            name=name,
            port=port,
            bind_ip=mongo.bind_ip,
            cache_size_gb=mongo.cache_size_gb,
            max_incoming_connections=mongo.max_incoming_connections,
            slow_op_threshold_ms=mongo.slow_op_threshold_ms,
            keyfile=KEYFILE,
        )
    ),
    dest="/etc/mongod.conf",
    mode="644",
)

started = systemd.service(name="mongod enabled and running", service="mongod", running=True, enabled=True)

restart_member(
    name="Restart for the new mongod.conf (a primary steps down first)",
    address=address,
    _if=lambda: conf.did_change() and not started.did_change(),
    _serial=True,  # one member at a time when a batch holds several
)

replicaset_reconcile(name=f"Replica set {name} matches the inventory", set_name=name)

"""Issue 11, item 2 on real hosts: a value that would run a command on a lab host runs nothing there.

Each case writes the injecting value where an operator would (group_data, the inventory) in a copy of the
ops content, runs opsrun (and, for the deploys, a plain `pyinfra` run: the deploys read the same schemas),
and looks for the marker file on every host. The two sinks that quote rather than refuse (the record-only
`true TEXT` commands of deploys/_redis.py and _mongo.py, and remote.py's `cat > PATH` on an nginx balancer's
host) are also fed the injecting text directly, on a host's own shell, past the schema.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from opsrun.hosts.remote import Remote
from opsrun.model.inventory import load
from opsrun.model.project import Project
from tests.conftest import opsrun

pytestmark = pytest.mark.lab
HOSTS = ["web1", "web2", "web3"]
MARKER = "/tmp/opsrun-injected"

CASES = [  # (file, line added, deploy)
    ("group_data/web.py", f'pm2_apps[0]["name"] = "demo; touch {MARKER}"', "pm2"),
    ("group_data/web.py", f'patching_hold = ["demo; touch {MARKER}"]', "patching"),
    ("group_data/redis.py", f'redis_cluster_settings["save"] = "900 1\\ntouch {MARKER}"', "redis_cluster"),
    ("group_data/mongo.py", f'mongo_replicaset_name = "rs0; touch {MARKER}"', "mongo_replicaset"),
    (
        "inventories/lab.py",
        f'all[1]["balancer"] = {{"type": "nginx", "host": "web1", "upstream": "web", '
        f'"config": "/tmp/x\'; touch {MARKER}; echo \'"}}',
        "nginx",
    ),
]


@pytest.fixture
def no_marker(lab, on_host):
    for h in HOSTS:
        on_host(h, f"rm -f {MARKER}")
    yield
    found = [h for h in HOSTS if on_host(h, f"test -e {MARKER}", check=False).returncode == 0]
    assert found == [], f"a command ran on {found}"


IDS = ["pm2-app-name", "patching-hold", "redis-setting-newline", "mongo-set-name", "nginx-balancer-config-path"]


@pytest.mark.parametrize(("path", "line", "deploy"), CASES, ids=IDS)
def test_an_injecting_setting_runs_nothing_on_any_host(path, line, deploy, project_copy, no_marker):
    target = project_copy / path
    target.write_text(target.read_text() + "\n" + line + "\n")
    proc = opsrun("apply", "lab", deploy, "--limit", "web1", project=project_copy)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"error: {target}" in proc.stderr and "Fix:" in proc.stderr, proc.stderr
    if path.startswith("inventories/"):
        return  # the balancer is opsrun's, not a deploy's: a plain pyinfra run does not read it
    plain = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "pyinfra"), "inventories/lab.py", f"deploys/{deploy}.py",
         "--limit", "web1", "--dry", "-y"],
        cwd=project_copy, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert plain.returncode != 0 and f"ConfigError: {target}" in plain.stdout + plain.stderr, plain.stdout


def test_record_only_commands_run_nothing_on_a_host_shell(on_host, no_marker):
    """deploys/_redis.py and _mongo.py record what they do as `true TEXT`, TEXT quoted by pyinfra."""
    from pyinfra.api import QuoteString, StringCommand

    for text in (f"restart 7000\ntouch {MARKER}", f"x'; touch {MARKER}; '", f"$(touch {MARKER})"):
        on_host("web1", StringCommand("true", QuoteString(text)).get_raw_value())


def test_remote_put_writes_the_literal_path_and_runs_nothing(lab, on_host, no_marker, project_copy):
    """remote.py's `cat > PATH` (the nginx balancer's config) with a path the schema would refuse."""
    inv = load(Project(project_copy), "lab")
    # no '/' after the folder: the whole value is one file name in /tmp if it stays literal; if it were run,
    # `touch` would make the marker in root's home (the shell's working folder)
    evil = "/tmp/opsrun-x'; touch opsrun-injected-put; echo '"
    Remote(inv, "web1").put(evil, "upstream web {}\n")
    try:
        assert on_host("web1", f"cat {shlex.quote(evil)}").stdout == "upstream web {}\n"
        assert on_host("web1", "test -e /root/opsrun-injected-put", check=False).returncode == 1, "it ran"
    finally:
        on_host("web1", f"rm -f {shlex.quote(evil)} /root/opsrun-injected-put")

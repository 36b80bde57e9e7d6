"""The lab session: three real hosts. Each test's fixtures bring them to the state it needs (converge,
converge_web_tier, the modules' own), so a test passes alone and in any order (`make test-alone`, and the
shuffled order of `make test`). A lab that cannot start is an error here, never a skip: these tests are the
proof."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from opsrun.balancers.base import wait_healthy
from opsrun.balancers.haproxy import HAProxy
from opsrun.lab import Lab
from opsrun.lab.hosts import ssh as lab_ssh

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _run_documents_match_their_schema():
    """Every run document the test's opsrun runs wrote (.opsrun/results/, --out) validates against the published
    JSON Schema, docs/reference/run-document.schema.json (tests/conftest.py's opsrun() checks what it prints)."""
    from tests.conftest import check_written_documents

    since = time.time()
    yield
    check_written_documents(since)


@pytest.fixture(scope="session")
def lab() -> Lab:
    """The session's 3 hosts: a fresh lab, or with OPSRUN_KEEP_LAB=1 the lab that is up (made if none is) and
    left up afterwards, as `make test-alone` runs each test in a pytest of its own."""
    lab = Lab()
    keep = bool(os.environ.get("OPSRUN_KEEP_LAB"))
    try:
        if not keep:
            lab.down()
        hosts = lab.up(3)
    except Exception as exc:
        pytest.fail(f"the lab could not start here (the lab tests need it; see the README): {exc}", pytrace=False)
    not_running = [h for h in hosts if h.state != "running"]
    assert not not_running, f"lab hosts not running after up: {not_running}"
    yield lab
    if not keep:
        lab.down()


@pytest.fixture(scope="session")
def addresses(lab: Lab) -> dict[str, str]:
    return {h.name: h.address for h in lab.status()}


@pytest.fixture(scope="session")
def on_host(lab: Lab, addresses):
    """Run a shell command on a lab host as root; returns the CompletedProcess."""

    def run(host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = lab_ssh(lab.cfg, addresses[host], command, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{host}: `{command}` exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def haproxy(lab) -> HAProxy:
    """The lab's HAProxy, driven through its admin socket."""
    doc = json.loads(lab.cfg.state_file.read_text())["haproxy"]
    return HAProxy(doc["socket"], doc["backend"])


@pytest.fixture(scope="session")
def frontend(lab) -> str:
    """The URL clients use: HAProxy's frontend on the lab bridge."""
    return "http://{}/".format(json.loads(lab.cfg.state_file.read_text())["haproxy"]["frontend"])


HOSTS = ["web1", "web2", "web3"]


def converge(*deploys: str, project: Path | None = None) -> None:
    """The lab's hosts as `deploys` of `project` (default: this repo) say: a plain parallel apply of each in
    turn, no rollout (a no-change apply takes seconds); any host it could not bring there fails the test."""
    from opsrun import engine
    from opsrun.model import inventory
    from opsrun.model.project import Project
    from tests.conftest import REPO

    ops = Project(project or REPO)
    inv = inventory.load(ops, "lab")
    for deploy in deploys:
        run = engine.run_deploy(ops, inv, deploy, inv.select(None))
        failed = {h.name: h.error or [(op.name, op.error) for op in h.operations if not op.success] for h in run.hosts}
        assert run.status == "success", f"converging the lab on {deploy}: {failed}"


def converge_web_tier(lab: Lab, balancer: HAProxy) -> None:
    """Every lab host up, the demo app under PM2 and nginx in front of it as this repo says, each serving in
    HAProxy: what the tests of the web tier start from, whatever the test before left."""
    lab.up(3)
    converge("pm2", "nginx")
    for h in HOSTS:
        if balancer.state(h).admin != "ready":
            balancer.enable(h)
    for h in HOSTS:
        wait_healthy(balancer, h, timeout=60)


@pytest.fixture
def web_tier(lab, haproxy) -> None:
    """The web tier converged (converge_web_tier) before the test."""
    converge_web_tier(lab, haproxy)


def wait_for_progress(proc: subprocess.Popen[str], text: str, timeout: float = 120) -> list[str]:
    """Read an opsrun child's progress lines (stderr) until one holds `text`; the lines read so far."""
    from opsrun.support.waiting import poll_until

    assert proc.stderr is not None
    stderr = proc.stderr
    seen: list[str] = []

    def found() -> bool:
        line = stderr.readline()
        seen.append(line)
        if not line and proc.poll() is not None:
            raise AssertionError(f"opsrun ended before {text!r}: {''.join(seen)}")
        return text in line

    poll_until(found, timeout=timeout, interval=0, what=f"progress line {text!r}")
    return seen


def demo_versions(on_host, hosts: list[str]) -> dict[str, str]:
    """The version of opsrun-demo installed on each host."""
    return {h: on_host(h, "dpkg-query -W -f '${Version}' opsrun-demo").stdout for h in hosts}


def install_demo_1_0(lab: Lab, on_host, hosts: list[str]) -> None:
    """The fleet as we find it: opsrun-demo 1.0 installed on `hosts` from the repository that patching manages."""
    from opsrun.lab import aptrepo
    from tests.conftest import opsrun_json

    aptrepo.withdraw(lab.cfg)  # another module's 1.3 would be the upgrade otherwise
    aptrepo.publish(lab.cfg, "1.0")
    code, doc = opsrun_json("apply", "lab", "patching")
    assert code == 0, doc
    for h in hosts:
        on_host(
            h,
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -q --allow-downgrades opsrun-demo=1.0",
        )


MONGOD_UNIT = """[Unit]
Description=MongoDB Database Server
After=network-online.target

[Service]
User=mongodb
Group=mongodb
ExecStart=/usr/local/bin/mongod --config /etc/mongod.conf
RuntimeDirectory=mongodb

[Install]
WantedBy=multi-user.target
"""


def install_mongod(on_host, hosts: list[str]) -> None:
    """mongod 'already installed' the way MongoDB's package would have it (a mongodb user, the binary,
    mongod.service), with no data and no configuration: the stand-in of tests/standins/mongod.py, or the
    real mongod that OPSRUN_MONGOD_BINARY names."""
    import base64

    binary = Path(os.environ.get("OPSRUN_MONGOD_BINARY") or Path(__file__).parents[1] / "standins" / "mongod.py")
    encoded = base64.encodebytes(binary.read_bytes()).decode()
    for h in hosts:
        on_host(
            h,
            "systemctl stop mongod 2>/dev/null; rm -rf /var/lib/mongodb /var/log/mongodb /etc/mongod.conf; "
            "id mongodb >/dev/null 2>&1 || useradd --system --home-dir /var/lib/mongodb --shell /bin/false mongodb",
        )
        on_host(h, f"base64 -d > /usr/local/bin/mongod <<'EOF'\n{encoded}EOF\nchmod 755 /usr/local/bin/mongod")
        on_host(h, f"cat > /etc/systemd/system/mongod.service <<'EOF'\n{MONGOD_UNIT}EOF\nsystemctl daemon-reload")


# ------------------------------------------------------------------------------- a fleet's way in


@pytest.fixture(scope="session")
def bastion(lab: Lab) -> str:
    """The lab's bastion host, up (lab.fleet): its address."""
    from opsrun.lab import fleet

    return fleet.bastion_up(lab.cfg)


@pytest.fixture
def behind_bastion(lab: Lab, bastion: str):
    """The web hosts as a fleet has them for the test (root logins refused, SSH only from the bastion), and
    the lab's own access back afterwards. Ask for it last: the fixtures before it converge as root."""
    from opsrun.lab import fleet

    fleet.access(lab.cfg, HOSTS, True)
    try:
        yield
    finally:
        fleet.access(lab.cfg, HOSTS, False)


@pytest.fixture(scope="session")
def console(lab: Lab):
    """Run a shell command on a lab host as root without SSH (lab.fleet.console); the CompletedProcess."""
    from opsrun.lab import fleet

    def run(host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = fleet.console(lab.cfg, host, command)
        if check and proc.returncode != 0:
            raise AssertionError(f"{host}: `{command}` exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


def fleet_project(dest: Path, bastion: str | None) -> Path:
    """This repo's ops content reaching the lab as a fleet's is reached: as admin with sudo, through
    `bastion` (None: straight to each host, which a host behind the bastion refuses)."""
    from tests.conftest import copy_ops

    ops = copy_ops(dest)
    jump = f'ssh_jump = "admin@{bastion}"\n' if bastion else ""
    (ops / "group_data" / "lab.py").write_text(f'ssh_user = "admin"\n_sudo = True\n{jump}')
    return ops

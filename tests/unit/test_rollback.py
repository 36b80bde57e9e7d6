"""Rollback with the rollout's stage logic and scripted hosts: package downgrades checked before the drain,
on_failure "rollback" through the same stages with the revision checked out aside from a real git repo,
and `opsrun rollback`'s refusals (exit 2, no host touched). The real parts are proved in
tests/lab/test_rollback.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from opsrun.balancers.fake import FakeBalancer
from opsrun.cli import cli
from opsrun.model import inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun, OperationResult, RolloutRun
from opsrun.reports.model import from_document, rollback_notes
from opsrun.rollout import Policy, Rollout, StageRunners
from opsrun.rollout.downgrade import Downgrades, available, install_command, missing
from opsrun.runs import undo
from opsrun.runs.options import Options
from opsrun.store import open_store
from tests.conftest import git

DATA = Path(__file__).resolve().parents[1] / "data" / "apt"
HOSTS = ["web1", "web2", "web3"]


# ------------------------------------------------------------------------------------------ downgrades


def test_madison_output_is_read_as_the_versions_each_archive_offers():
    offered = available((DATA / "madison.txt").read_text())
    assert offered["opsrun-demo"] == {"1.0", "1.1"}
    assert offered["haproxy"] == {"2.6.12-1+deb12u4", "2.6.12-1+deb12u3"}
    assert "1:9.2p1-2+deb12u9" in offered["openssh-client"]
    assert missing({"opsrun-demo": "1.0", "haproxy": "2.6.12-1+deb12u3"}, offered) is None
    assert missing({"opsrun-demo": "0.9"}, offered) == (
        "the archive no longer has opsrun-demo 0.9 (it offers 1.0, 1.1): left untouched "
        "(publish that version again, or go back by hand)"
    )


def test_the_downgrade_keeps_configuration_files_and_holds_the_version():
    command = install_command({"opsrun-demo": "1.0", "libfoo1": "2:1.2-3"})
    assert "--allow-downgrades" in command and "--force-confold" in command
    assert command.endswith("libfoo1=2:1.2-3 opsrun-demo=1.0 && apt-mark hold libfoo1 opsrun-demo")


class FakeRemote:
    """Each host's archive (package -> versions) and what was run on it."""

    archives: ClassVar[dict[str, dict[str, list[str]]]] = {}
    ran: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, _inv, host: str, timeout: float):
        self.host = host

    def run(self, command: str) -> tuple[int, str, str]:
        FakeRemote.ran.append((self.host, command))
        if "madison" in command:
            lines = [f"{p} | {v} | http://repo ./ Packages" for p, vs in self.archives[self.host].items() for v in vs]
            return 0, "\n".join(lines), ""
        return 0, "Unpacking opsrun-demo (1.0) over (1.1) ...\n", ""


def ops_inventory(root: Path, name: str = "prod") -> inventory.Inventory:
    return inventory.load(Project(root), name)


class Hosts:
    """Scripted connect and apply (the deploy's own operation), recording which project each apply used."""

    def __init__(self, apply_fails=()):
        self.apply_fails = set(apply_fails)
        self.applied: list[tuple[str, list[str]]] = []

    def connect(self, project, inv, hosts, **_):
        return dict.fromkeys(hosts)

    def apply(self, project, inv, deploy, hosts, **_):
        version = (project.root / "deploys" / f"{deploy}.py").read_text().strip()
        self.applied.append((version, hosts))
        failed = {h for h in hosts if (h, version) in self.apply_fails or h in self.apply_fails}
        ops = {h: [OperationResult("config", True, h not in failed, "exit 3" if h in failed else None)] for h in hosts}
        return DeployRun(inv.name, deploy, False, [HostRun(h, ops[h]) for h in hosts])

    def runners(self, balancer) -> StageRunners:
        return StageRunners(connect=self.connect, apply=self.apply, balancer=balancer)


POLICY = Policy(serial=(1,), max_fail=0, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never")


def test_a_host_whose_archive_lacks_the_version_is_refused_before_its_drain(tmp_path, monkeypatch):
    root = write_project(tmp_path / "ops", "VERSION = 1")
    inv = ops_inventory(root)
    FakeRemote.archives = {"web1": {"opsrun-demo": ["1.0", "1.1"]}, "web2": {"opsrun-demo": ["1.1"]}}
    FakeRemote.ran = []
    bal, hosts = FakeBalancer(HOSTS), Hosts()
    downgrades = Downgrades(inv, {"web1": {"opsrun-demo": "1.0"}, "web2": {"opsrun-demo": "1.0"}}, remote=FakeRemote)
    run = Rollout(Project(root), inv, "app", POLICY, runners=downgrades.runners(hosts.runners(bal))).run(
        ["web1", "web2"]
    )
    web1, web2 = run.hosts["web1"], run.hosts["web2"]
    assert (web1.outcome, web2.outcome, web2.stage, web2.in_balancer) == ("done", "failed", "check", True)
    assert "the archive no longer has opsrun-demo 1.0 (it offers 1.1)" in (web2.reason or "")
    assert ("drain", "web2") not in bal.calls and bal.admin["web2"] == "ready"
    assert hosts.applied == [("VERSION = 1", ["web1"])]
    assert web1.run is not None
    assert [op.name for op in web1.run.operations] == ["config", "Downgrade opsrun-demo to 1.0 (held there)"]
    assert web1.run.upgrades == [{"package": "opsrun-demo", "from": "1.1", "to": "1.0"}]
    assert [h for h, c in FakeRemote.ran if "install" in c] == ["web1"]


# --------------------------------------------------------------------------------- a real git project


INVENTORY = 'web = [("web1", {"ssh_hostname": "10.231.7.11"}), ("web2", {"ssh_hostname": "10.231.7.12"}), ' + (
    '("web3", {"ssh_hostname": "10.231.7.13"})]\n'
)
ROLLING = 'rolling = {"serial": 1, "drain_timeout": 0.2, "healthy_timeout": 0.2, "verify": False, "reboot": "never"}\n'


def write_project(root: Path, version: str, *, rolling: str = ROLLING) -> Path:
    for name, text in {
        "inventories/prod.py": INVENTORY,
        "group_data/web.py": rolling,
        "deploys/app.py": version + "\n",
        ".gitignore": ".opsrun/\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def commit(root: Path, version: str, **kwargs: str) -> str:
    write_project(root, version, **kwargs)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", version)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """An ops repo in git: revision A (VERSION = 1), then B (VERSION = 2), checked out at B."""
    root = tmp_path / "ops"
    root.mkdir()
    git(root, "init", "-q")
    a = commit(root, "VERSION = 1")
    b = commit(root, "VERSION = 2")
    return root, a, b


def record(root: Path, revision: str, status: str, hosts: dict[str, dict]) -> int:
    store = open_store(root / ".opsrun")
    try:
        run_id = store.start_run("apply", "prod", "app", revision=revision, plan={"batches": [[h] for h in hosts]})
        store.finish_run(run_id, {"kind": "rollout", "status": status, "hosts": hosts})
        return run_id
    finally:
        store.close()


def done(batch: int) -> dict:
    return {"outcome": "done", "batch": batch, "changed": 1, "in_balancer": True}


def roll_with_a_way_back(root: Path, forward: Rollout, revision: str) -> tuple[RolloutRun, list[str], list[Path]]:
    """`forward` run with on_failure "rollback" (the way back prepared first, run if it halts): its result,
    the notices, and what was checked out aside while it ran."""
    store, notes = open_store(root / ".opsrun"), []
    try:
        with undo.OnFailure(
            Project(root),
            forward.inv,
            "app",
            HOSTS,
            options=Options(),
            store=store,
            revision=revision,
            notice=notes.append,
        ) as way_back:
            aside = list((root / ".opsrun" / "rollback").glob("*"))
            result = forward.run(HOSTS)
            way_back.after_halt(result, forward)
    finally:
        store.close()
    return result, notes, aside


def test_on_failure_sends_the_changed_hosts_and_the_failed_one_back_newest_first(repo):
    root, a, b = repo
    good = record(root, a, "success", {h: done(i) for i, h in enumerate(HOSTS, 1)})
    inv, bal, hosts = ops_inventory(root), FakeBalancer(HOSTS), Hosts(apply_fails={("web2", "VERSION = 2")})
    forward = Rollout(Project(root), inv, "app", POLICY, runners=hosts.runners(bal))
    result, notes, aside = roll_with_a_way_back(root, forward, b)

    assert hosts.applied == [
        ("VERSION = 2", ["web1"]),
        ("VERSION = 2", ["web2"]),
        ("VERSION = 1", ["web2"]),  # the failed host first: the newest
        ("VERSION = 1", ["web1"]),
    ]
    assert len(aside) == 1 and not any((root / ".opsrun" / "rollback").iterdir()), "the checkout aside stays"
    assert (root / "deploys" / "app.py").read_text() == "VERSION = 2\n", "the work tree was touched"
    assert bal.admin == dict.fromkeys(HOSTS, "ready")
    assert result.status == "failed" and result.exit_code == 1  # the change failed, whatever the rollback did
    assert result.left_out() == []
    back = result.rollback
    assert back is not None and back.status == "succeeded" and back.automatic
    assert (back.to_revision, back.to_run, back.came_from) == (a, good, {"web2": b, "web1": b})
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["rollback"]["status"] == "succeeded" and doc["rollback"]["run"]["plan"]["batches"] == [
        ["web2"],
        ["web1"],
    ]
    assert rollback_notes(result.to_dict()["rollback"]) == [
        f"rollback to revision {a[:12]} (run {good}) succeeded",
        f"  web2: back on {a[:12]}, in the balancer",
        f"  web1: back on {a[:12]}, in the balancer",
    ]
    assert notes == [
        f"1 failed host(s), over the failure budget of 0: rolling back web2, web1 to {a[:12]} (run {good})"
    ]
    report = from_document(doc)  # the Markdown, HTML and JUnit reports' notes
    assert report.notes[-3:] == rollback_notes(doc["rollback"])


def test_a_rollback_that_fails_stops_and_says_which_hosts_are_where(repo):
    root, a, b = repo
    record(root, a, "success", {h: done(i) for i, h in enumerate(HOSTS, 1)})
    inv, bal = ops_inventory(root), FakeBalancer(HOSTS)
    hosts = Hosts(apply_fails={("web3", "VERSION = 2"), ("web2", "VERSION = 1")})
    policy = Policy(serial=(1,), max_fail=0, drain_timeout=0.2, healthy_timeout=0.2, verify=False, reboot="never")
    forward = Rollout(Project(root), inv, "app", policy, runners=hosts.runners(bal))
    result, _notes, _aside = roll_with_a_way_back(root, forward, b)
    assert [h for v, hs in hosts.applied if v == "VERSION = 1" for h in hs] == ["web3", "web2"]
    assert result.rollback is not None and result.rollback.status == "failed"
    lines = rollback_notes(result.to_dict()["rollback"])
    assert lines[0].startswith(f"rollback to revision {a[:12]}") and "failed" in lines[0]
    assert lines[1:] == [
        f"  web3: back on {a[:12]}, in the balancer",
        "  web2: rollback failed at apply: operation 'config' failed: exit 3, OUT of the balancer",
        f"  web1: not rolled back: still on {b[:12]}, in the balancer",
    ]
    assert result.left_out() == ["web2"]


def test_on_failure_without_a_successful_run_halts_and_says_why(repo):
    root, _a, b = repo
    inv, bal, hosts = ops_inventory(root), FakeBalancer(HOSTS), Hosts(apply_fails={"web1"})
    forward = Rollout(Project(root), inv, "app", POLICY, runners=hosts.runners(bal))
    result, notes, _aside = roll_with_a_way_back(root, forward, b)
    assert len(hosts.applied) == 1 and bal.admin["web1"] == "drain"
    assert result.rollback is not None and result.rollback.status == "not attempted"
    assert rollback_notes(result.to_dict()["rollback"]) == [
        "not rolled back: no successful apply of app on prod recorded a revision to go back to"
    ]
    assert notes and "a failure will halt the rollout" in notes[0]


# ------------------------------------------------------------------------------ opsrun rollback refused


def cli_run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--project", str(root), "rollback", "prod", "app", *args])


@pytest.mark.usefixtures("no_host_touched")
def test_a_project_that_is_not_in_git_is_refused(tmp_path, host_guard):
    root = write_project(tmp_path / "ops", "VERSION = 1")
    result = cli_run(root)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {root}: is not a git repository with a commit")
    assert "Fix: keep the ops repo in git" in result.stderr
    assert host_guard == []


@pytest.mark.usefixtures("no_host_touched")
@pytest.mark.parametrize(
    ("runs", "args", "message"),
    [
        ([], [], "no recorded apply of this deploy on this inventory changed a host: there is nothing to roll back"),
        (["B"], [], "no successful apply with a recorded revision before run 1"),
        (["GONE", "B"], [], "run 1: revision: revision 0123456789ab no longer exists in the git repository"),
        (["A", "B"], ["--revision", "FIRST"], "revision: revision FIRST has no deploys/app.py"),
        (["A", "B"], ["--revision", "no-such-ref"], "--revision: revision no-such-ref no longer exists"),
        (["A", "B"], ["--to", "9"], "--to: no apply of this deploy on this inventory is run 9"),
        (["A", "B"], ["--to", "1", "--revision", "A"], "--to and --revision both name where to go"),
        (["A", "B"], ["--to", "2"], "no apply of app on prod since run 2 changed a host selected"),
    ],
)
def test_a_rollback_with_nowhere_to_go_is_refused_before_any_host(repo, host_guard, runs, args, message):
    root, a, b = repo
    empty = git(root, "hash-object", "-w", "-t", "tree", "/dev/null")
    orphan = git(root, "commit-tree", empty, "-m", "a revision without deploys/app.py")
    revisions = {"A": a, "B": b, "GONE": "0123456789abcdef0123456789abcdef01234567", "FIRST": orphan}
    for name in runs:
        record(root, revisions[name], "success", {h: done(i) for i, h in enumerate(HOSTS, 1)})
    args = [revisions.get(x, x) if x in ("A", "FIRST") else x for x in args]
    result = cli_run(root, *args)
    assert result.exit_code == 2, result.output
    assert message.replace("FIRST", orphan[:12]) in result.stderr, result.stderr
    assert host_guard == []
    assert not (root / ".opsrun" / "rollback").exists() or not any((root / ".opsrun" / "rollback").iterdir())


def test_an_apply_from_uncommitted_changes_records_exactly_what_it_applied(tmp_path, monkeypatch):
    from opsrun import engine

    root = tmp_path / "ops"
    root.mkdir()
    git(root, "init", "-q")
    head = commit(root, "VERSION = 1", rolling="")  # no rolling policy: a plain apply of every host at once
    (root / "deploys" / "app.py").write_text("VERSION = 'uncommitted'\n")
    seen = []

    def fake(project, inv, deploy, hosts, **_):
        seen.append((project.root / "deploys" / f"{deploy}.py").read_text())
        return DeployRun(inv.name, deploy, False, [HostRun(h, [OperationResult("op", True, True)]) for h in hosts])

    monkeypatch.setattr(engine, "run_deploy", fake)
    result = CliRunner().invoke(cli, ["--project", str(root), "apply", "prod", "app", "--format", "json"])
    assert result.exit_code == 0, result.output
    store = open_store(root / ".opsrun")
    try:
        [row] = store.runs("prod")
    finally:
        store.close()
    assert row.revision is not None and row.revision.endswith("+dirty")
    snapshot = row.revision.removesuffix("+dirty")
    assert git(root, "show", f"{snapshot}:deploys/app.py") == seen[0].strip() == "VERSION = 'uncommitted'"
    assert git(root, "rev-parse", f"{snapshot}^") == head
    assert git(root, "status", "--porcelain") == "M deploys/app.py"


class DownGate:
    """A health gate that never passes (the host's app does not answer before or after)."""

    http = "http://{address}/health"

    def probe(self, host, address):
        return False, "connection refused"

    def wait(self, host, address):
        raise TimeoutError(f"{host}: health gate never passed")


@pytest.mark.parametrize(("held", "outcome"), [(set(), ("done", None)), ({"web1"}, ("failed", "health"))])
def test_a_rollback_holds_its_hosts_to_the_gate_even_when_they_were_out_before(tmp_path, held, outcome):
    """A drained host whose gate failed (the failed host of the run a rollback undoes) would pass as 'not
    serving before'; a rollback holds it, so a way back that does not serve stops there."""
    root = write_project(tmp_path / "ops", "VERSION = 1")
    bal = FakeBalancer(HOSTS)
    bal.drain("web1")
    policy = Policy(
        serial=(1,), drain_timeout=0.2, healthy_timeout=0.2, health=DownGate(), verify=False, reboot="never"
    )  # type: ignore[arg-type]
    executor = Rollout(Project(root), ops_inventory(root), "app", policy, runners=Hosts().runners(bal))
    executor.held = held
    run = executor.run(["web1"])
    assert (
        run.hosts["web1"].outcome,
        run.hosts["web1"].stage if run.hosts["web1"].outcome == "failed" else None,
    ) == outcome


@pytest.mark.usefixtures("no_host_touched")
def test_a_revision_whose_settings_are_refused_names_its_file_by_the_revision(tmp_path, host_guard):
    root = tmp_path / "ops"
    root.mkdir()
    git(root, "init", "-q")
    bad = commit(root, "VERSION = 1", rolling='rolling = {"serial": 0}\n')
    commit(root, "VERSION = 2")
    result = cli_run(root, "--revision", bad)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: revision {bad[:12]}/group_data/web.py: rolling.serial: "), result.stderr
    assert host_guard == []
    assert not any((root / ".opsrun" / "rollback").iterdir())


class DataHosts(Hosts):
    """Hosts that record, with each apply, the `release` the inventory gave web1 (group_data or --data)."""

    def apply(self, project, inv, deploy, hosts, **kw):
        run = super().apply(project, inv, deploy, hosts, **kw)
        self.applied[-1] = (f"{self.applied[-1][0]} release={inv.hosts['web1'].data.get('release')}", hosts)
        return run


def test_the_way_back_applies_the_good_runs_data_not_the_bad_runs(repo):
    """A bad release given on the command line (`apply -e release=2`): going back re-applies the good run's
    revision with the good run's own --data (release=1), never the failing run's."""
    root, a, b = repo
    store = open_store(root / ".opsrun")
    good = store.start_run("apply", "prod", "app", revision=a, plan={"batches": [[h] for h in HOSTS]})
    store.finish_run(good, {"kind": "rollout", "status": "success", "data": {"release": "1"}, "hosts": {}})
    store.close()
    bad = Options(data={"release": "2"})
    inv, bal = inventory.load(Project(root), "prod", bad.data), FakeBalancer(HOSTS)
    hosts = DataHosts(apply_fails={("web2", "VERSION = 2")})
    forward = Rollout(Project(root), inv, "app", POLICY, runners=hosts.runners(bal))
    store, notes = open_store(root / ".opsrun"), []
    try:
        with undo.OnFailure(
            Project(root), inv, "app", HOSTS, options=bad, store=store, revision=b, notice=notes.append
        ) as way_back:
            result = forward.run(HOSTS)
            way_back.after_halt(result, forward)
    finally:
        store.close()
    assert hosts.applied == [
        ("VERSION = 2 release=2", ["web1"]),
        ("VERSION = 2 release=2", ["web2"]),
        ("VERSION = 1 release=1", ["web2"]),
        ("VERSION = 1 release=1", ["web1"]),
    ]
    assert result.rollback is not None and result.rollback.status == "succeeded"


def test_a_runs_data_is_read_back_from_its_result_and_none_when_it_had_none(repo):
    root, a, _ = repo
    store = open_store(root / ".opsrun")
    try:
        with_data = store.start_run("apply", "prod", "app", revision=a, plan={"batches": []})
        store.finish_run(with_data, {"kind": "rollout", "status": "success", "data": {"release": "1"}, "hosts": {}})
        without = store.start_run("apply", "prod", "app", revision=a, plan={"batches": []})  # killed: no document
        assert undo.applied_data(store, with_data) == {"release": "1"}
        assert undo.applied_data(store, without) == {}
        assert undo.applied_data(store, None) == {}
    finally:
        store.close()


def test_the_summary_of_a_failed_host_rolled_back_says_it_is_in_the_balancer(repo):
    from rich.console import Console

    from opsrun.reports import as_text

    root, a, b = repo
    record(root, a, "success", {h: done(i) for i, h in enumerate(HOSTS, 1)})
    inv, bal, hosts = ops_inventory(root), FakeBalancer(HOSTS), Hosts(apply_fails={("web2", "VERSION = 2")})
    result, _, _ = roll_with_a_way_back(root, Rollout(Project(root), inv, "app", POLICY, runners=hosts.runners(bal)), b)
    console = Console(record=True, width=300)
    as_text.rollout_run(result, console)
    text = console.export_text()
    assert f"web2: rolled back to {a[:12]}" in text
    assert "web2: failed at apply: operation 'config' failed: exit 3 (it is in the balancer)" in text, text
    assert bal.admin["web2"] == "ready"

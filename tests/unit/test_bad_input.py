"""Issue 11: bad input is refused before any host is touched (exit 2, file, field, fix), nothing is injected.

Every test here runs under the SSH guard of tests/unit/conftest.py: a way to a host is refused and counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsrun.balancers.haproxy import HAProxy
from opsrun.cli import cli
from opsrun.errors import BalancerError, ConfigError
from opsrun.hosts.remote import Remote
from opsrun.hosts.sshconfig import ssh_config
from opsrun.model.inventory import load
from opsrun.model.project import Project
from opsrun.store import open_store
from tests.unit import ssh_guard

REPO = Path(__file__).resolve().parents[2]


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--project", str(project), *args])


def add(project: Path, path: str, text: str) -> None:
    target = project / path
    target.write_text(target.read_text() + "\n" + text + "\n")


def assert_refused(result, file: str, field: str) -> None:
    __tracebackhide__ = True
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.startswith("error: "), result.stderr
    assert file in result.stderr and f": {field}: " in result.stderr and " Fix: " in result.stderr, result.stderr


# ------------------------------------------------------------------------------------------- item 7


def test_guard_refuses_and_counts_every_way_to_a_host(host_guard):
    for attempt in (
        lambda: subprocess.run(["ssh", "-V"], check=False),
        lambda: subprocess.run(["python3", "-m", "opsrun.engine"], check=False),
        lambda: socket.create_connection(("127.0.0.1", 22), timeout=1),
        lambda: socket.create_connection(("10.231.7.11", 80), timeout=1),
    ):
        with pytest.raises(ssh_guard.HostReached):
            attempt()
    assert len(host_guard) == 4
    host_guard.clear()  # seen; the fixture's own check is for attempts nobody expected


def test_a_valid_rolling_apply_from_the_cli_reaches_no_host(project_copy, host_guard):
    """The stage runners call opsrun.engine when they run (nothing captured at import), so the guard sees
    every way a rolling apply would reach a host, and refuses it."""
    run(project_copy, "apply", "lab", "nginx", "--limit", "web1")
    reached = list(host_guard)
    host_guard.clear()
    assert reached and all("opsrun.engine" in r or "lab" in r for r in reached)


# ------------------------------------------------------------------------------------------- item 1

ITEM1 = [
    ("group_data/web.py", 'pm2_apps[0].pop("name")', "pm2_apps[0].name"),
    ("group_data/web.py", 'pm2_apps[0]["instances"] = "x"', "pm2_apps[0].instances"),
    ("group_data/web.py", 'pm2_apps[0]["name"] = "demo; touch /tmp/x"', "pm2_apps[0].name"),
    ("group_data/web.py", 'nginx_upstream_servers = ["; evil"]', "nginx_upstream_servers[0]"),
    ("group_data/web.py", 'patching_hold = ["a; touch /tmp/x"]', "patching_hold[0]"),
    ("group_data/redis.py", "redis_cluster_replicas = -1", "redis_cluster_replicas"),
    ("group_data/web.py", 'rolling["health"]["status"] = "ok"', "rolling.health.status"),
    ("group_data/web.py", 'rolling["health"]["interval"] = "x"', "rolling.health.interval"),
    ("group_data/web.py", 'rolling["health"] = {"tcp": True}', "rolling.health.tcp"),
    ("group_data/web.py", 'rolling["last"] = {"mongo_primary": "abc"}', "rolling.last.mongo_primary"),
    ("group_data/web.py", 'rolling["health"]["http"] = "http://{nosuch}:3001/"', "rolling.health.http"),
    ("inventories/lab.py", 'all[1]["balancer"]["server"] = "{nosuch}"', "balancer.server"),
    ("group_data/all.py", 'dr = {"targets": "x"}', "dr.targets"),
    ("group_data/all.py", 'dr = {"backups": "s3://b"}', "dr.backups"),
    ("inventories/lab.py", 'all[1]["ssh_port"] = "abc"', "ssh_port"),
    ("inventories/lab.py", 'all[1]["ssh_port"] = True', "ssh_port"),
]


@pytest.mark.parametrize(("path", "line", "field"), ITEM1, ids=[c[2] + ":" + c[1][:30] for c in ITEM1])
def test_bad_setting_is_refused_naming_file_field_and_fix(project_copy, path, line, field):
    add(project_copy, path, line)
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert_refused(result, str(project_copy / path), field)


def test_redis_port_out_of_range_is_refused(project_copy):
    lab = project_copy / "inventories/lab.py"
    lab.write_text(lab.read_text().replace("[7000 + 2 * _i, 7001 + 2 * _i]", "[70000, -1]"))
    result = run(project_copy, "apply", "lab", "redis_cluster", "--dry-run")
    assert_refused(result, str(lab), "redis_cluster_ports[0]")


# ------------------------------------------------------------------------------------------- item 2


def test_remote_put_quotes_the_path(tmp_path, monkeypatch):
    """The nginx balancer's `config` path reaches `cat > PATH`: run it with a local shell instead of ssh."""
    marker = tmp_path / "injected"
    monkeypatch.setattr(Remote, "__init__", lambda self, *a, **k: None)

    def local(self, command, stdin=None):
        proc = subprocess.run(
            ["sh", "-c", command], input=stdin, capture_output=True, text=True, check=False, cwd=tmp_path
        )
        return proc.returncode, proc.stdout, proc.stderr

    monkeypatch.setattr(Remote, "run", local)
    remote = Remote()
    remote.host = "lb1"
    evil = str(tmp_path / "x'; touch injected; echo '")
    remote.put(evil, "text")
    assert not marker.exists()
    assert Path(evil).read_text() == "text"


def test_ssh_config_refuses_a_newline_that_adds_a_proxycommand(project_copy, tmp_path):
    marker = tmp_path / "injected"
    add(project_copy, "inventories/lab.py", f'all[1]["ssh_user"] = "root\\n  ProxyCommand touch {marker}"')
    inv = load(Project(project_copy), "lab")
    with pytest.raises(ConfigError, match="ssh_user"):
        ssh_config(inv, ["web1"], tmp_path)
    result = run(project_copy, "verify", "lab", "nginx")
    assert_refused(result, str(project_copy / "inventories/lab.py"), "ssh_user")
    assert not marker.exists()


@pytest.mark.parametrize("deploy", ["_redis.py", "_mongo.py"])
def test_record_only_commands_quote_their_text(deploy, tmp_path):
    """The operations record what they do as `true TEXT`: TEXT is one quoted argument, never a comment
    that a newline ends. The shape used in the deploy, run with an injecting text, runs nothing."""
    source = (REPO / "deploys" / deploy).read_text()
    assert 'StringCommand("true", "#"' not in source and 'StringCommand("true", QuoteString(' in source
    from pyinfra.api import QuoteString, StringCommand

    marker = tmp_path / "injected"
    command = StringCommand("true", QuoteString(f"restart x\ntouch {marker}")).get_raw_value()
    subprocess.run(["sh", "-c", command], check=True)
    assert not marker.exists()


class LineRecorder:
    """A unix socket that records the lines it receives, answering like HAProxy's admin socket."""

    def __init__(self, path: Path):
        self.lines: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.lines.append(conn.recv(65536).decode())
                conn.sendall(b"\n")


def test_haproxy_never_sends_a_name_with_a_second_command(tmp_path):
    recorder = LineRecorder(tmp_path / "admin.sock")
    try:
        lb = HAProxy(str(tmp_path / "admin.sock"), "web")
        for name in ("web1;disable frontend fe", "web1\nshutdown sessions server web/web2"):
            with pytest.raises(BalancerError, match="not a plain name"):
                lb.drain(name)
        with pytest.raises(BalancerError, match="not a plain name"):
            HAProxy(str(tmp_path / "admin.sock"), "web;disable frontend fe")
        lb.drain("web1")
    finally:
        recorder.sock.close()
    assert recorder.lines == ["set server web/web1 state drain\n"]


def test_haproxy_server_name_with_a_semicolon_is_refused_by_the_schema(project_copy):
    add(project_copy, "inventories/lab.py", 'all[1]["balancer"]["backend"] = "web;disable frontend fe"')
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert_refused(result, str(project_copy / "inventories/lab.py"), "balancer.backend")


def test_lab_supervisor_script_quotes_its_paths(tmp_path):
    from opsrun.lab.config import LabConfig
    from opsrun.lab.hosts import supervisor_script

    marker = tmp_path / "injected"
    lab_dir = tmp_path / f"lab $(touch {marker})"
    cfg = LabConfig.from_env() if hasattr(LabConfig, "from_env") else LabConfig()
    cfg = type(cfg)(**{**vars(cfg), "lab_dir": lab_dir}) if hasattr(cfg, "__dataclass_fields__") else cfg
    script = supervisor_script(cfg, tmp_path / "base", "web1")
    first = next(line for line in script.splitlines() if "supervisor.pid" in line and line.startswith("echo"))
    cfg.host_dir("web1").mkdir(parents=True)
    subprocess.run(["sh", "-c", first], check=True)
    assert not marker.exists()
    assert (cfg.host_dir("web1") / "supervisor.pid").exists()
    assert shlex.split(first)[-1] == f"{cfg.host_dir('web1')}/supervisor.pid"


# ------------------------------------------------------------------------------------------- item 3


@pytest.mark.parametrize("limit", ["", ",", " , "])
def test_blank_limit_is_refused_naming_hosts_and_groups(limit):
    result = run(REPO, "apply", "lab", "nginx", "--dry-run", "--limit", limit)
    assert result.exit_code == 2, result.output
    assert "--limit" in result.stderr and "web1" in result.stderr and "groups (web" in result.stderr


@pytest.mark.parametrize(
    ("extra", "word"), [(["--limit", "web1"], "--limit"), (["--dry-run"], "--dry-run")], ids=["limit", "dry-run"]
)
def test_resume_with_limit_or_dry_run_is_refused(project_copy, extra, word):
    result = run(project_copy, "apply", "lab", "nginx", "--resume", "1", *extra)
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"it takes no {word}" in result.stderr


def test_resume_after_a_host_left_the_inventory_is_refused(project_copy):
    store = open_store(project_copy / ".opsrun")
    plan = {"batches": [["web1"], ["ghost"]]}
    run_id = store.start_run("apply", "lab", "nginx", revision=None, plan=plan)
    hosts = {"web1": {"outcome": "done"}, "ghost": {"outcome": "failed", "stage": "apply"}}
    store.finish_run(run_id, {"status": "failed", "inventory": "lab", "deploy": "nginx", "plan": plan, "hosts": hosts})
    store.close()
    result = run(project_copy, "apply", "lab", "nginx", "--resume", str(run_id))
    assert result.exit_code == 2, (result.output, result.exception)
    assert "left ghost to do, no longer in inventory lab" in result.stderr


# ------------------------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("damage", ["garbage", "foreign schema", "directory"])
def test_damaged_state_db_is_a_clear_error(project_copy, damage):
    state = project_copy / ".opsrun"
    state.mkdir()
    if damage == "garbage":
        (state / "state.db").write_bytes(b"not sqlite" * 500)
    elif damage == "foreign schema":
        with sqlite3.connect(state / "state.db") as conn:
            conn.execute("CREATE TABLE runs (something TEXT)")
    else:
        (state / "state.db").mkdir()
    result = run(project_copy, "history")
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"error: {state / 'state.db'}" in result.stderr and "Fix:" in result.stderr


def test_opsrun_folder_that_is_a_file_is_a_clear_error(project_copy):
    (project_copy / ".opsrun").write_text("")
    result = run(project_copy, "history")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Fix:" in result.stderr


@pytest.mark.parametrize("url", ["postgresql://[broken", "postgresql://u:PW@127.0.0.1:1/db?sslmode=nosuch"])
def test_malformed_state_url_is_a_clear_error_without_the_password(url):
    result = run(REPO, "--state", url, "history")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "PW" not in result.stderr and "--state" in result.stderr


def test_unwritable_out_is_refused_before_any_host(project_copy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(project_copy, "apply", "lab", "nginx", "--limit", "web1", "--out", str(blocker / "reports"))
    assert_refused(result, str(blocker / "reports"), "--out")


def test_non_utf8_group_data_is_a_clear_error(project_copy):
    (project_copy / "group_data" / "web.py").write_bytes(b"nginx_server_name = '\xff'\n")
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert result.exit_code == 2 and "is not UTF-8" in result.stderr, (result.output, result.exception)


def test_unpicklable_host_data_is_refused(project_copy):
    add(
        project_copy, "group_data/web.py", "import threading\nlock_of_web = threading.Lock()\n__all__ = ['lock_of_web']"
    )
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert_refused(result, str(project_copy / "group_data/web.py"), "lock_of_web")


def test_month_19_is_refused():
    result = run(REPO, "dr-test", "lab", "--month", "2026-19")
    assert result.exit_code == 2 and "is not a month" in result.stderr


# ------------------------------------------------------------------------------------------- item 5


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "lab/../lab"])
def test_inventory_name_must_be_plain(name):
    result = run(REPO, "apply", name, "nginx", "--dry-run")
    assert result.exit_code == 2 and "is not an inventory name" in result.stderr, result.output


@pytest.mark.parametrize("name", ["admin@web1", "web1:2222", "web9/x", "[web1]", "web 1", "-oProxyCommand=x", "é1"])
def test_a_host_name_that_ssh_or_testinfra_would_read_as_something_else_is_refused(project_copy, name, host_guard):
    """testinfra reads `admin@web1` as user admin at web1, `web1:2222` as port 2222 of web1: verify would
    check another host than the one named, and record its results as web1's."""
    add(
        project_copy,
        "inventories/lab.py",
        f"all[0].append({name!r})\nweb.append(({name!r}, {{'ssh_hostname': '10.231.7.99'}}))",
    )
    result = run(project_copy, "verify", "lab", "nginx")
    assert_refused(result, str(project_copy / "inventories/lab.py"), "web")
    assert repr(name) in result.stderr and "ssh_hostname" in result.stderr


def test_duplicate_host_with_other_address_is_refused(project_copy):
    add(project_copy, "inventories/lab.py", 'web.append(("web1", {"ssh_hostname": "10.231.7.99"}))')
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert result.exit_code == 2 and "web1 is listed twice with different ssh_hostname" in result.stderr


def test_group_given_as_a_string_is_refused(project_copy):
    add(project_copy, "inventories/lab.py", 'db = "db1"')
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert_refused(result, str(project_copy / "inventories/lab.py"), "db")


def test_system_exit_inside_an_inventory_is_refused(project_copy):
    add(project_copy, "inventories/lab.py", "raise SystemExit(0)")
    result = run(project_copy, "apply", "lab", "nginx", "--dry-run")
    assert result.exit_code == 2 and "raised SystemExit" in result.stderr


# ------------------------------------------------------------------------------- issue 29: the rough edges


def assert_clear(result, file: str, field: str | None = None) -> None:
    """Exit 2, one `error:` line naming the file (and field) and the fix, no traceback."""
    __tracebackhide__ = True
    if field is not None:
        assert_refused(result, file, field)
    else:
        assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
        assert result.stderr.startswith(f"error: {file}: ") and " Fix: " in result.stderr, result.stderr
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("args", "file", "field"),
    [
        (["apply", "lab", "nginx", "--limit", "web*,!web9"], "inventories/lab.py", "--limit"),
        (["apply", "lab", "nginx", "--limit", "web1:!web1"], "inventories/lab.py", "--limit"),
        (["verify", "lab", "nginx", "--limit", "@nosuch-file"], "nosuch-file", "--limit"),
        (["drift", "lab", "nginx", "-l", "~web["], "inventories/lab.py", "--limit"),
        (["apply", "lab", "nginx", "--data", "no equals sign"], "the command line", "--data"),
        (["apply", "lab", "nginx", "--data", "nginx_worker_connections=lots"], "--data", "nginx_worker_connections"),
        (["drift", "lab", "nginx", "-e", 'rolling={"serial": "x"}'], "--data", "rolling.serial"),
        (["dr-test", "lab", "--month", "2026-13"], "the command line", "--month"),
        (["drift", "lab", "--notify", "pager:x"], "the command line", "--notify"),
    ],
)
def test_bad_command_line_is_one_clear_line(project_copy, args, file, field):
    result = run(project_copy, *args)
    assert_clear(result, file if not file.startswith("inventories") else str(project_copy / file), field)
    assert f"{field}: {field}" not in result.stderr  # "--month: --month: ..." said the field twice


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["apply", "lab", "../evil"], "a deploy"),
        (["drift", "lab", "nginx", "../evil"], "a deploy"),
        (["verify", "lab", "../evil"], "a verify suite"),
        (["apply", "lab", "deploys/nginx"], "a deploy"),
    ],
)
def test_deploy_and_suite_names_are_one_word_like_inventories(project_copy, args, kind):
    """`../evil` would load a file outside deploys/ (and write its result under .opsrun/results/...-../)."""
    (project_copy / "evil.py").write_text("raise SystemExit('loaded from outside deploys/')\n")
    (project_copy / "evil").mkdir()
    (project_copy / "evil" / "test_evil.py").write_text("def test_x():\n    pass\n")
    result = run(project_copy, *args, "--dry-run") if args[0] == "apply" else run(project_copy, *args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"is not {kind} name." in result.stderr and "Fix: name " in result.stderr
    assert not (project_copy / ".opsrun" / "results").exists() or not list((project_copy / ".opsrun").rglob("*evil*"))


SECRET = "hunter2-Secret-Value"


@pytest.mark.parametrize(
    ("path", "line", "field"),
    [
        ("group_data/web.py", f'pm2_apps[0]["secret_env"] = {{"API_TOKEN": "{SECRET}!"}}', "pm2_apps[0].secret_env"),
        ("group_data/redis.py", f'redis_cluster_auth = {{"secret_env": {{"requirepass": "{SECRET} x"}}}}', "auth"),
        ("inventories/lab.py", f'all[1]["ssh_password"] = ["{SECRET}"]', "ssh_password"),
    ],
)
def test_a_schema_error_in_a_secret_bearing_field_never_shows_the_value(project_copy, path, line, field):
    add(project_copy, path, line)
    deploy = "redis_cluster" if "redis" in path else "nginx"
    result = run(project_copy, "apply", "lab", deploy, "--dry-run")
    assert result.exit_code == 2, (result.output, result.exception)
    assert field in result.stderr and " Fix: " in result.stderr, result.stderr
    assert SECRET not in result.output and "not shown" in result.stderr


@contextlib.contextmanager
def unwritable(folder: Path):
    """`folder` that no file can be made in: read-only for a user; immutable (chattr +i) for root, whom a mode
    does not stop."""
    folder.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("damage", ["a file", "read-only"])
@pytest.mark.parametrize(
    "args",
    [["apply", "lab", "nginx", "--dry-run"], ["verify", "lab", "nginx"], ["drift", "lab", "nginx"]],
    ids=["dry-run", "verify", "drift"],
)
def test_an_unusable_opsrun_folder_exits_2_with_its_path_and_the_fix(project_copy, damage, args):
    state = project_copy / ".opsrun"
    if damage == "a file":
        state.write_text("")
        result = run(project_copy, *args)
    else:
        with unwritable(state):
            result = run(project_copy, *args)
    assert_clear(result, str(state))
    assert "a folder this user can write to" in result.stderr


def test_history_show_help_is_its_own(project_copy):
    result = run(project_copy, "history", "show", "--help")
    assert result.exit_code == 0 and "Usage: cli history show [OPTIONS] RUN_ID" in result.stdout, result.output


def test_verify_runs_are_in_history_with_full_timestamps_when_piped(project_copy, monkeypatch):
    from opsrun.model.results import TestResult, VerifyRun
    from opsrun.verification import verify

    def passed(project, inv, suite, hosts, **_kw):
        return VerifyRun(inv.name, suite, hosts, [TestResult(h, "test_nginx.py::test_up", "passed") for h in hosts])

    monkeypatch.setattr(verify, "run_suite", passed)
    assert run(project_copy, "verify", "lab", "nginx").exit_code == 0
    rows = json.loads(run(project_copy, "history", "--format", "json").stdout)["runs"]
    assert [(r["kind"], r["inventory"], r["deploy"], r["status"]) for r in rows] == [
        ("verify", "lab", "nginx", "passed")
    ]
    table = run(project_copy, "history", "lab").stdout  # CliRunner's stdout is no terminal: as when piped
    assert rows[0]["started_at"] in table and "…" not in table, table
    shown = run(project_copy, "history", "show", str(rows[0]["id"]), "--format", "json")
    assert json.loads(shown.stdout)["hosts"]["web1"]["status"] == "passed"


def test_dr_test_prints_junit_as_out_writes_it(project_copy, tmp_path):
    (tmp_path / "night.dump").write_text("dump")
    (project_copy / "group_data" / "all.py").write_text(
        f'dr = {{"backups": [{{"name": "dumps", "files": "{tmp_path}/*.dump", "max_age_hours": 26}}]}}\n'
    )
    result = run(project_copy, "dr-test", "lab", "--format", "junit")
    assert result.exit_code == 0, (result.output, result.exception)
    import xml.etree.ElementTree as ET

    assert ET.fromstring(result.stdout).tag in ("testsuites", "testsuite")


@pytest.mark.parametrize("value", ["-1", "soon", "3601"])
def test_a_bad_state_retry_is_refused_naming_the_option(value):
    result = run(REPO, "--state-retry", value, "history")
    assert result.exit_code == 2 and "Invalid value for '--state-retry'" in result.stderr, result.stderr

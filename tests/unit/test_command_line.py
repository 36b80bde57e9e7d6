"""Issue 29: the command line an Ansible or pyinfra user already knows, driven through the real CLI (click's
runner; the engine and the verifier replaced where a host would be reached): host patterns and --list-hosts,
--diff, -h/-v/-q, --forks, --data, shell completion, and exit codes that do not hide unreachable hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsrun import engine
from opsrun.cli import cli
from opsrun.model.results import DeployRun, HostRun, OperationResult, TestResult, VerifyRun
from opsrun.verification import verify

REPO = Path(__file__).resolve().parents[2]
SWAP = "/var/lib/opsrun/config-swap"
CONFIG = OperationResult(
    "nginx configuration (validated with nginx -t)",
    True,
    True,
    commands=[
        f"mkdir -p -m 700 {SWAP}",
        f"upload {SWAP}/etc%nginx%nginx.conf.new",
        f"if [ -e /etc/nginx/nginx.conf ]; then cp -p /etc/nginx/nginx.conf {SWAP}/etc%nginx%nginx.conf.old; fi",
    ],
    diff=[
        "Will modify /etc/nginx/nginx.conf",
        "@@ -12,1 +12,1 @@",
        "-    keepalive_timeout 5;",
        "+    keepalive_timeout 65;",
    ],
)
RELOAD = OperationResult("Reload nginx", True, True, commands=["systemctl reload nginx.service"])


pytestmark = pytest.mark.usefixtures("no_host_touched")


def run(*args, project=REPO, env=None):
    return CliRunner().invoke(cli, ["--project", str(project), *args], env=env, prog_name="opsrun")


@pytest.fixture
def fake_engine(monkeypatch):
    """engine.run_deploy answering every host changed (web3 unreachable when `unreachable` holds it); the calls."""
    calls: list[dict] = []
    unreachable: set[str] = set()

    def fake(project, inv, deploy, hosts, dry_run=False, **kw):
        calls.append({"inv": inv, "hosts": hosts, "dry_run": dry_run, **kw})
        runs = [
            HostRun(h, [], f"could not connect to {h} (10.231.7.13:22): timed out", reached=False)
            if h in unreachable
            else HostRun(h, [CONFIG, RELOAD])
            for h in hosts
        ]
        return DeployRun(inv.name, deploy, dry_run, runs, seconds=0.5)

    monkeypatch.setattr(engine, "run_deploy", fake)
    fake.calls, fake.unreachable = calls, unreachable  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def fake_verifier(monkeypatch):
    """verify.run_suite passing every test (web3 unreachable when `unreachable` holds it); the calls."""
    calls: list[dict] = []
    unreachable: set[str] = set()

    def fake(project, inventory, suite, hosts, **kw):
        calls.append({"hosts": hosts, **kw})
        results = [
            TestResult(h, "(connect)", "error", f"could not connect to {h}")
            if h in unreachable
            else TestResult(h, "test_nginx.py::test_nginx_is_running", "passed")
            for h in hosts
        ]
        return VerifyRun(inventory.name, suite, hosts, results, seconds=0.2)

    monkeypatch.setattr(verify, "run_suite", fake)
    fake.calls, fake.unreachable = calls, unreachable  # type: ignore[attr-defined]
    return fake


# ------------------------------------------------------------------------------ 1. host patterns, --list-hosts


def test_list_hosts_prints_hosts_groups_and_batches_and_connects_to_nothing():
    result = run("apply", "lab", "nginx", "--list-hosts", "--limit", "web*,!web2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "hosts (2) of lab:",
        "  web1  batch 1  groups: web, redis, mongo, lab",
        "  web3  batch 2  groups: web, redis, mongo, lab",
        "plan: 2 batches (1: web1 | 2: web3); failure budget 0",
    ]


@pytest.mark.parametrize(
    ("args", "hosts"),
    [
        (["verify", "lab", "nginx", "-l", "web1", "-l", "web3"], ["web1", "web3"]),  # repeated: a union
        (["drift", "lab", "nginx", "-l", "lab:!web1"], ["web2", "web3"]),
        (["apply", "lab", "pm2", "--limit", "~web[23]", "--serial", "2"], ["web2", "web3"]),
    ],
)
def test_list_hosts_json_for_every_command(args, hosts):
    result = run(*args, "--list-hosts", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [h["name"] for h in doc["hosts"]] == hosts
    assert all(h["groups"] == ["web", "redis", "mongo", "lab"] for h in doc["hosts"])


def test_limit_patterns_choose_the_hosts_the_engine_gets(plain_project, fake_engine):
    result = run("apply", "lab", "nginx", "--dry-run", "--limit", "web:!web2", "-l", "&lab", project=plain_project)
    assert result.exit_code == 0, result.output
    assert [c["hosts"] for c in fake_engine.calls] == [["web1", "web3"]]


def test_limit_error_lists_the_inventorys_groups_not_group_data_files():
    result = run("apply", "lab", "nginx", "--limit", "web1,!staging")
    assert result.exit_code == 2
    assert "'staging' matches no host or group (group staging has no hosts in lab)" in result.stderr
    assert "groups (web, redis, mongo, lab)" in result.stderr and "production" not in result.stderr


# ------------------------------------------------------------------------------ 2. --diff


def test_dry_run_diff_shows_each_file_change_and_never_opsruns_own_commands(plain_project, fake_engine):
    result = run("apply", "lab", "nginx", "--dry-run", "--diff", "--limit", "web2", project=plain_project)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = lines.index("web2: would change 'nginx configuration (validated with nginx -t)'")
    assert lines[at + 1 : at + 5] == [
        "    Will modify /etc/nginx/nginx.conf",
        "    @@ -12,1 +12,1 @@",
        "    -    keepalive_timeout 5;",
        "    +    keepalive_timeout 65;",
    ]
    assert "    systemctl reload nginx.service" in lines
    assert "config-swap" not in result.output


def test_without_diff_a_dry_run_names_the_files_and_at_vv_opsruns_commands_too(plain_project, fake_engine):
    plain = run("apply", "lab", "nginx", "--dry-run", "--limit", "web2", project=plain_project)
    assert "    Will modify /etc/nginx/nginx.conf" in plain.stdout and "keepalive_timeout" not in plain.stdout
    assert "config-swap" not in plain.output
    loud = run("apply", "lab", "nginx", "--dry-run", "--limit", "web2", "-vv", project=plain_project)
    assert f"    upload {SWAP}/etc%nginx%nginx.conf.new" in loud.stdout


def test_apply_diff_asks_the_engine_for_diffs_and_shows_them(plain_project, fake_engine):
    result = run("apply", "lab", "nginx", "--diff", "--limit", "web1", project=plain_project)
    assert result.exit_code == 0, result.output
    assert [(c["dry_run"], c["diff"]) for c in fake_engine.calls] == [(False, True)]
    assert "web1: changed 'nginx configuration (validated with nginx -t)'" in result.stdout
    assert "    +    keepalive_timeout 65;" in result.stdout and "config-swap" not in result.output
    quiet = run("apply", "lab", "nginx", "--limit", "web1", project=plain_project)
    assert fake_engine.calls[-1]["diff"] is False and "keepalive_timeout" not in quiet.stdout


# ------------------------------------------------------------------------------ 3. -h, -v, -q, pyinfra's log


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["-h"], "Usage: opsrun [OPTIONS] COMMAND [ARGS]..."),
        (["apply", "-h"], "Usage: opsrun apply [OPTIONS] INVENTORY DEPLOY"),
        (["history", "show", "-h"], "Usage: opsrun history show [OPTIONS] RUN_ID"),
        (["lab", "up", "-h"], "Usage: opsrun lab up [OPTIONS]"),
    ],
)
def test_h_is_help_everywhere(args, usage):
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(usage)


@pytest.mark.parametrize("flags", [["-v"], ["-vv"], ["-q"], ["--verbose", "--verbose"]])
def test_verbosity_is_taken_after_the_command_as_in_ansible(flags):
    result = run("apply", "lab", "nginx", "--list-hosts", *flags)
    assert result.exit_code == 0, result.output


def record(level: int, message: str, name: str = "pyinfra") -> str:
    import logging

    from opsrun.support import logs

    return logs.record_line(logging.LogRecord(name, level, __file__, 1, message, None, None))


def worker_output() -> str:
    """What a worker wrote for a run where web1 had no known_hosts file to read and web2 was down."""
    import logging

    return "".join(
        [
            record(logging.WARNING, "Failed to load host keys from /root/.ssh/known_hosts: [Errno 2] No such file"),
            record(logging.ERROR, "\x1b[31m[web2] Could not connect (timed out)\x1b[0m"),
            record(logging.INFO, "[web1] \x1b[32mConnected\x1b[0m"),
            record(logging.WARNING, "[web1] fact Command failed, ignoring"),
            record(logging.INFO, "  + keepalive_timeout 65;"),
            record(logging.DEBUG, "[web1] >>> sh -c 'mv -f /var/lib/opsrun/config-swap/x /etc/x'", "pyinfra.api"),
            "deploy says hello\n",
        ]
    )


@pytest.mark.parametrize(
    ("verbosity", "expected"),
    [
        (-1, []),  # -q
        (0, ["warning: web1: fact Command failed, ignoring", "deploy says hello"]),
        (1, ["web1: Connected", "warning: web1: fact Command failed, ignoring", "deploy says hello"]),
    ],
)
def test_pyinfras_log_lines_are_routed_once_and_never_repeat_a_hosts_own_error(verbosity, expected):
    """The host's connect error is its result's line (said once, by opsrun); the known_hosts warning is noise."""
    from opsrun.support import logs

    assert logs.shown(worker_output(), verbosity) == expected


def test_at_vv_every_line_as_written_and_always_in_the_debug_log(tmp_path, capsys):
    from opsrun.support import logs

    raw = logs.shown(worker_output(), logs.RAW)
    assert "[web2] Could not connect (timed out)" in raw and any("config-swap" in line for line in raw)
    logs.set_level(logs.NORMAL)
    try:
        logs.worker_output(worker_output(), tmp_path / "debug.log")
    finally:
        logs.set_level(logs.NORMAL)
    kept = (tmp_path / "debug.log").read_text()
    assert "pyinfra: Failed to load host keys from /root/.ssh/known_hosts" in kept
    assert "[web2] Could not connect" in kept and "deploy says hello" in kept
    assert "Failed to load host keys" not in capsys.readouterr().err


def test_hosts_progress_is_a_line_a_step_off_a_terminal_and_a_table_on_one():
    import io

    from rich.console import Console

    from opsrun.cli.progress import HostsDisplay
    from opsrun.support import progress

    out = io.StringIO()
    with HostsDisplay(Console(file=out, width=120)):
        progress.report("web1", "working", "before any run began")  # a rollout's stages: not this display's
        progress.begin(["web1", "web2", "web3"])
        for host, state, doing in [
            ("web1", "working", "connected"),
            ("web1", "working", "Install nginx"),
            ("web1", "working", "Install nginx"),  # the same step again: no new line
            ("web2", "unreachable", ""),
            ("web1", "done", "2 changed"),
        ]:
            progress.report(host, state, doing)
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == [
        "web1: connected",
        "web1: Install nginx",
        "web2: unreachable",
        "web1: done: 2 changed",
    ]
    silent = io.StringIO()
    with HostsDisplay(Console(file=silent, width=120), quiet=True):  # -q
        progress.begin(["web1"])
        progress.report("web1", "done", "")
    assert silent.getvalue() == ""
    screen = Console(file=io.StringIO(), width=120, force_terminal=True)
    display = HostsDisplay(screen)
    with display:
        progress.begin(["web1", "web2", "web3"])
        progress.report("web1", "done", "")
        progress.report("web2", "failed", "Install nginx")
        progress.report("web3", "working", "Install nginx")
        assert display.live is not None
        shown = Console(file=io.StringIO(), width=120, record=True)
        shown.print(display._table())
    text = shown.export_text()
    assert "1 of 3 hosts done, 1 failed" in text and "│ web3  │ Install nginx" in text and "web1" not in text


# ------------------------------------------------------------------------------ 4. --forks, --data, completion


def test_forks_caps_the_hosts_at_once(plain_project, fake_engine, fake_verifier):
    assert run("apply", "lab", "nginx", "--forks", "2", project=plain_project).exit_code == 0
    assert fake_engine.calls[-1]["forks"] == 2
    assert run("verify", "lab", "nginx", "-f", "3", project=plain_project).exit_code == 0
    assert fake_verifier.calls[-1]["concurrency"] == 3
    assert run("drift", "lab", "nginx", "--forks", "1", project=plain_project).exit_code == 3  # drift found
    assert (fake_engine.calls[-1]["forks"], fake_verifier.calls[-1]["concurrency"]) == (1, 1)
    assert run("verify", "lab", "nginx", project=plain_project).exit_code == 0
    assert fake_verifier.calls[-1]["concurrency"] == verify.DEFAULT_CONCURRENCY


def test_data_overrides_group_data_for_one_run_and_is_kept_in_history(plain_project, fake_engine):
    result = run(
        "apply", "lab", "nginx", "--data", "nginx_worker_connections=512", "-e", "nginx_server_name=shop.test",
        "--format", "json", project=plain_project,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = fake_engine.calls[-1]["inv"].hosts["web1"].data
    assert (data["nginx_worker_connections"], data["nginx_server_name"]) == (512, "shop.test")
    run_id = json.loads(result.stdout)["run_id"]
    shown = json.loads(run("history", "show", str(run_id), "--format", "json", project=plain_project).stdout)
    assert shown["data"] == {"nginx_worker_connections": 512, "nginx_server_name": "shop.test"}
    text = run("history", "show", str(run_id), project=plain_project).stdout
    assert "data: nginx_worker_connections=512, nginx_server_name='shop.test'" in text
    run("apply", "lab", "nginx", "--dry-run", project=plain_project)
    assert fake_engine.calls[-1]["inv"].hosts["web1"].data["nginx_worker_connections"] == 1024  # one run only


def test_data_is_checked_by_the_schema_before_any_host(plain_project):
    result = run("apply", "lab", "nginx", "--data", "nginx_worker_connections=many", project=plain_project)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --data: nginx_worker_connections: ")
    assert "Fix: " in result.stderr


def complete(words: str) -> list[str]:
    env = {"_OPSRUN_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    result = CliRunner().invoke(cli, [], env=env, prog_name="opsrun")
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_shell_completion_offers_the_projects_inventories_deploys_and_suites():
    assert complete(f"opsrun --project {REPO} apply ") == ["lab", "production", "staging"]
    assert complete(f"opsrun --project {REPO} apply lab p") == ["patching", "pm2"]
    assert complete(f"opsrun --project {REPO} verify lab a") == ["aws"]
    assert complete(f"opsrun --project {REPO} drift lab nginx r") == ["redis_cluster"]
    assert complete(f"opsrun --project {REPO} history list l") == ["lab"]


# ------------------------------------------------------------------------------ 5. exit codes


@pytest.mark.parametrize("fmt", ["text", "json", "md", "html", "junit"])
def test_drift_that_could_not_reach_a_host_exits_1_in_every_format(
    monkeypatch, plain_project, fake_engine, fake_verifier, fmt
):
    """A clean drift on the hosts it reached is still exit 1 when one could not be reached."""
    clean = OperationResult("nginx configuration (validated with nginx -t)", False, True)
    fake_engine.unreachable.add("web3")

    def calm(*args, **kwargs):
        got = fake_engine(*args, **kwargs)
        hosts = [h if not h.reached else HostRun(h.name, [clean]) for h in got.hosts]
        return DeployRun(got.inventory, got.deploy, True, hosts)

    monkeypatch.setattr(engine, "run_deploy", calm)
    strict = run("drift", "lab", "nginx", "--format", fmt, project=plain_project)
    assert strict.exit_code == 1, strict.output
    allowed = run("drift", "lab", "nginx", "--allow-unreachable", "--format", fmt, project=plain_project)
    assert allowed.exit_code == 0, allowed.output
    if fmt == "json":
        assert json.loads(strict.stdout)["status"] == json.loads(allowed.stdout)["status"] == "partial"


def test_fail_on_unreachable_still_works_and_is_the_default(plain_project, fake_engine, fake_verifier):
    fake_engine.unreachable.add("web3")
    assert run("drift", "lab", "nginx", "--fail-on-unreachable", project=plain_project).exit_code == 1


@pytest.mark.parametrize("command", [["apply", "lab", "nginx"], ["apply", "lab", "nginx", "--dry-run"]])
def test_apply_with_an_unreachable_host_exits_1_unless_allowed(plain_project, fake_engine, command):
    fake_engine.unreachable.add("web3")
    for fmt in ("text", "json"):
        assert run(*command, "--format", fmt, project=plain_project).exit_code == 1
        allowed = run(*command, "--allow-unreachable", "--format", fmt, project=plain_project)
        assert allowed.exit_code == 0, allowed.output
    fake_engine.unreachable.update({"web1", "web2"})
    assert run(*command, "--allow-unreachable", project=plain_project).exit_code == 1  # it reached none


def test_verify_with_an_unreachable_host_exits_1_unless_allowed(plain_project, fake_verifier):
    fake_verifier.unreachable.add("web3")
    for fmt in ("text", "json"):
        assert run("verify", "lab", "nginx", "--format", fmt, project=plain_project).exit_code == 1
        allowed = run("verify", "lab", "nginx", "--allow-unreachable", "--format", fmt, project=plain_project)
        assert allowed.exit_code == 0, allowed.output


def test_the_docs_have_one_exit_code_table():
    pages = {path: path.read_text() for path in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]}
    assert [path.name for path, text in pages.items() if "| exit | " in text] == ["exit-codes.md"]
    page = pages[REPO / "docs" / "exit-codes.md"]
    assert page.count("| exit | ") == 1
    table = page[page.index("| exit | ") :].split("\n\n")[0]
    for code in ("0", "1", "2", "3", "130"):
        assert f"\n| {code} |" in table
    assert "--allow-unreachable" in table


def test_a_command_line_run_in_this_process_leaves_the_root_logger_as_it_found_it():
    """-vv routes every record at DEBUG while it runs; a later caller (a test, a library user) must not inherit it."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    result = run("apply", "lab", "nginx", "--list-hosts", "-vv")
    assert result.exit_code == 0, result.output
    assert (root.level, root.handlers) == (level, handlers)

"""The CLI: exit codes, messages, and that bad input never reaches a host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsrun import engine
from opsrun.cli import cli
from opsrun.model.results import DeployRun, HostRun, OperationResult

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("no_host_touched")


def run(*args, project=REPO):
    return CliRunner().invoke(cli, ["--project", str(project), *args])


DEPLOYS = "mongo_replicaset, nginx, patching, pm2, redis_cluster"  # deploys/*.py and verify/*/ of this repo


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["apply", "nosuch", "nginx"],
            f"error: {REPO}/inventories/nosuch.py: no inventory named 'nosuch'. "
            "Fix: use one of: lab, production, staging",
        ),
        (
            ["apply", "lab", "nosuch"],
            f"error: {REPO}/deploys/nosuch.py: no deploy named 'nosuch'. Fix: use one of: {DEPLOYS}",
        ),
        (
            ["verify", "lab", "nosuch"],
            f"error: {REPO}/verify/nosuch: no verify suite named 'nosuch' "
            f"(a folder of test_*.py files). Fix: use one of: aws, {DEPLOYS}",
        ),
        (
            ["apply", "lab", "nginx", "--limit", "db9"],
            f"error: {REPO}/inventories/lab.py: --limit: 'db9' matches no host or group. "
            "Fix: name hosts (web1, web2, web3), groups (web, redis, mongo, lab) or patterns",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_file_and_choices(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message)


def test_syntax_error_in_group_data_exits_2_before_any_host(project_copy):
    (project_copy / "group_data" / "web.py").write_text("nginx_listen_port = = 80\n")
    result = run("apply", "lab", "nginx", project=project_copy)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {project_copy}/group_data/web.py: line 1: syntax error")


def test_not_a_project_exits_2(tmp_path):
    result = run("apply", "lab", "nginx", project=tmp_path)
    assert result.exit_code == 2
    assert "not an opsrun project" in result.stderr


def fake_run(dry_run=False, fail=False):
    ops = [OperationResult("Install nginx", True, True)]
    if fail:
        ops.append(OperationResult("nginx configuration", False, False, "unknown directive"))
    return DeployRun("lab", "nginx", dry_run, [HostRun("web1", ops), HostRun("web2", [])], seconds=1.5)


@pytest.mark.parametrize(("fail", "code", "status"), [(False, 0, "success"), (True, 1, "failed")])
def test_apply_json_document_and_exit_code(monkeypatch, plain_project, fail, code, status):
    calls = []

    def fake(project, inv, deploy, hosts, dry_run=False, **_):
        calls.append((inv.name, deploy, hosts, dry_run))
        return fake_run(dry_run, fail)

    monkeypatch.setattr(engine, "run_deploy", fake)
    result = run("apply", "lab", "nginx", "--limit", "web1,web2", "--format", "json", project=plain_project)
    assert result.exit_code == code
    doc = json.loads(result.stdout)
    assert doc["status"] == status
    assert doc["hosts"]["web1"]["changed"] == 1
    assert doc["hosts"]["web2"] == {"status": "ok", "changed": 0, "error": None, "upgrades": [], "operations": []}
    assert calls == [("lab", "nginx", ["web1", "web2"], False)]
    saved = sorted((plain_project / ".opsrun" / "results").glob("*-apply-lab-nginx.json"))
    assert json.loads(saved[0].read_text()) == doc


def test_apply_text_names_failed_host_and_operation(monkeypatch, plain_project):
    monkeypatch.setattr(engine, "run_deploy", lambda *a, **k: fake_run(fail=True))
    result = run("apply", "lab", "nginx", project=plain_project)
    assert result.exit_code == 1
    assert "operation 'nginx configuration' failed: unknown directive" in result.stdout
    assert "failed: web1" in result.stdout


def test_dry_run_is_passed_to_the_engine(monkeypatch, plain_project):
    seen = {}

    def fake(project, inv, deploy, hosts, dry_run=False, **_):
        seen["dry_run"] = dry_run
        return fake_run(dry_run)

    monkeypatch.setattr(engine, "run_deploy", fake)
    result = run("apply", "lab", "nginx", "--dry-run", project=plain_project)
    assert result.exit_code == 0 and seen == {"dry_run": True}
    assert "would change" in result.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["apply", "nosuch", "nginx"], 2),
        (["verify", "lab", "nosuch"], 2),
        (["apply", "lab"], 2),  # usage error: missing argument
        (["--version"], 0),
    ],
)
def test_process_exit_codes(args, code):
    """The installed entry point, as a shell sees it (CliRunner bypasses main())."""
    proc = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(REPO), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == code, proc.stderr


def test_an_unexpected_error_goes_to_the_projects_debug_log_not_the_current_folder(project_copy, tmp_path, monkeypatch):
    from opsrun.checks import history

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not a finding")

    monkeypatch.setattr(history, "runs", broken)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["--project", str(project_copy), "history"])
    log = project_copy / ".opsrun" / "debug.log"
    assert result.exit_code == 1
    assert f"internal error: RuntimeError('a bug, not a finding'); details in {log}" in result.output
    assert "RuntimeError: a bug, not a finding" in log.read_text()
    assert not (elsewhere / ".opsrun").exists()

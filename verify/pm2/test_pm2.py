"""What "done" means for deploys/pm2.py: each app online with its instances, not restarting over and over,
answering /health with its configured version, running its current release; logs rotated as configured;
PM2 started at boot.

Only names, states and counters are read from `pm2 jlist` (on the host): the rest of it is each
process's environment, secrets included, which must never reach a report.
"""

import hashlib
import json
import time
from pathlib import Path

import pytest

JLIST = (
    "pm2 jlist | python3 -c 'import json, sys; raw = sys.stdin.read(); print(json.dumps(["
    '{"name": p["name"], "status": p["pm2_env"]["status"], "restarts": p["pm2_env"].get("restart_time", 0), '
    '"module": bool(p["pm2_env"].get("pmx_module"))} for p in json.loads(raw[raw.index("["):])]))'
    "'"
)


def processes(host):
    return json.loads(host.check_output(JLIST))


@pytest.fixture(scope="module")
def apps(host_data):
    found = host_data.get("pm2_apps", [])
    assert found, "no pm2_apps in group_data for this host"
    return found


def test_each_app_has_its_instances_online(host, apps):
    procs = processes(host)
    online = {a["name"]: sum(p["name"] == a["name"] and p["status"] == "online" for p in procs) for a in apps}
    assert online == {a["name"]: a.get("instances", 1) for a in apps}


def test_restart_counts_do_not_climb(host, apps, host_data):
    """Two samples a few seconds apart: a crash-looping app restarts in between."""
    names = {a["name"] for a in apps}

    def restarts():
        return {p["name"]: p["restarts"] for p in processes(host) if p["name"] in names}

    before = restarts()
    time.sleep(host_data.get("pm2_verify_restart_window", 2))  # the observation window itself, not a wait
    assert restarts() == before


def test_health_answers_with_the_configured_version(host, apps):
    for app in apps:
        env = app.get("env", {})
        if "PORT" not in env:
            continue
        health = json.loads(host.check_output("curl -sS --max-time 5 http://127.0.0.1:%s/health", str(env["PORT"])))
        assert health["status"] == "ok", app["name"]
        if "APP_VERSION" in env:
            assert health["version"] == str(env["APP_VERSION"]), app["name"]


def test_the_current_release_is_the_apps_code_and_at_most_the_one_before_is_kept(host, apps):
    """CWD/current holds the code of the app's folder in the ops repo (suites run from the repo's top), and
    the releases folder keeps at most one release beside it (the way back)."""
    for app in apps:
        source, current = Path(app["source"]), f"{app['cwd']}/current"
        assert host.file(current).is_symlink, current
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            there = host.file(f"{current}/{path.relative_to(source).as_posix()}")
            assert there.sha256sum == hashlib.sha256(path.read_bytes()).hexdigest(), there.path
        kept = host.check_output("ls -1 %s", f"{app['cwd']}/releases").split()
        assert 1 <= len(kept) <= 2, kept


def test_logrotate_is_installed_and_configured(host, host_data):
    want = {"max_size": "100M", "retain": 30, "compress": True, **host_data.get("pm2_logrotate", {})}
    want.pop("version", None)
    online = [p for p in processes(host) if p["name"] == "pm2-logrotate"]
    assert [p["status"] for p in online] == ["online"]
    conf = json.loads(host.file("/root/.pm2/module_conf.json").content_string)["pm2-logrotate"]
    expected = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in want.items()}
    assert {k: str(conf.get(k)) for k in want} == expected


def test_pm2_starts_at_boot(host):
    unit = host.service("pm2-root")
    assert unit.is_enabled
    assert unit.is_running

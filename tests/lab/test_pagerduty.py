"""`opsrun drift lab nginx` paging through PagerDuty on the lab's real hosts, as the nightly unit runs it
(group_data `notify`, the routing key in the environment, --out), against the Events API v2 server on
loopback (tests/events_api.py).

Shows: a clean night after an apply sends nothing; a hand edit on web2 triggers one alert (severity
warning, the finding in its summary, the report's path and the run id in custom_details); the same drift
the next night sends nothing; more drift the night after is sent again (after a 500, landing once, under
the same dedup key); once applied, the clean night resolves the alert; the key is in no output, report or
file under .opsrun. The project is this module's own (its own state store); the hosts are put back with
an apply whatever happens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import copy_ops, opsrun, opsrun_json

pytestmark = pytest.mark.lab
ROUTING_ENV = "PD_LAB_ROUTING"
CONFIG_OP = "nginx configuration (validated with nginx -t)"
KEY = "opsrun drift lab nginx"


@pytest.fixture(scope="module")
def paging_project(tmp_path_factory, lab) -> Path:
    """A copy of the ops content that pages through PagerDuty, with a state store of its own."""
    ops = copy_ops(tmp_path_factory.mktemp("pagerduty") / "ops")
    all_py = ops / "group_data" / "all.py"
    all_py.write_text(
        all_py.read_text().replace('__all__ = ["dr"]', '__all__ = ["dr", "notify"]')
        + f'\nnotify = {{"pagerduty": {{"secret_env": {{"routing_key": "{ROUTING_ENV}"}}}}}}\n'
    )
    return ops


@pytest.fixture
def converged(paging_project, web_tier, on_host):
    """nginx as the repository says on every host, before the test and after it, whatever it broke."""
    code, doc = opsrun_json("apply", "lab", "nginx", project=paging_project)
    assert code == 0, doc
    yield paging_project
    code, doc = opsrun_json("apply", "lab", "nginx", project=paging_project)
    assert code == 0, doc


def night(project: Path, out: Path) -> tuple[int, dict, str]:
    proc = opsrun("drift", "lab", "nginx", "--out", str(out), "--format", "json", project=project)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stdout + proc.stderr
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from drift (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")


def test_the_nightly_drift_pages_once_and_resolves_when_clean(converged, on_host, pagerduty, monkeypatch, tmp_path):
    monkeypatch.setenv(ROUTING_ENV, pagerduty.routing_key)
    monkeypatch.delenv("OPSRUN_PAGERDUTY_ROUTING_KEY")
    out, printed = tmp_path / "reports", []

    code, doc, text = night(converged, out)
    printed.append(text)
    assert code == 0 and doc["status"] == "clean", doc
    assert pagerduty.received == []  # nothing open, nothing to resolve

    on_host("web2", "sed -i 's/keepalive_timeout 65/keepalive_timeout 5/' /etc/nginx/nginx.conf")
    code, doc, text = night(converged, out)
    printed.append(text)
    assert code == 3, doc
    [trigger] = pagerduty.accepted
    payload = trigger["payload"]
    assert (trigger["event_action"], trigger["dedup_key"], payload["severity"]) == ("trigger", KEY, "warning")
    assert payload["summary"] == f"Drift on lab: 1 finding(s), 1 new: web2 nginx: {CONFIG_OP} (will_change, new)"
    assert payload["custom_details"]["run_id"] == doc["run_id"]
    assert payload["custom_details"]["report"] == str(out.resolve() / "drift-lab.html")
    assert (out / "drift-lab.html").is_file()

    code, doc, text = night(converged, out)  # the same drift the next night
    printed.append(text)
    assert code == 3 and len(pagerduty.received) == 1

    on_host("web3", "sed -i 's/keepalive_timeout 65/keepalive_timeout 5/' /etc/nginx/nginx.conf")
    pagerduty.script = [(500, {})]
    code, doc, text = night(converged, out)
    printed.append(text)
    assert code == 3 and doc["notified"] == [f"pagerduty:{ROUTING_ENV}: trigger (warning) after 2 attempts"]
    assert len(pagerduty.accepted) == 2 and pagerduty.accepted[1]["dedup_key"] == KEY

    code, applied = opsrun_json("apply", "lab", "nginx", project=converged)
    assert code == 0, applied
    code, doc, text = night(converged, out)
    printed.append(text)
    assert code == 0 and doc["status"] == "clean", doc
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "trigger", "resolve"]
    assert pagerduty.alerts == {KEY: "resolved"}

    files = [p for p in [*out.rglob("*"), *(converged / ".opsrun").rglob("*")] if p.is_file()]
    blobs = printed + [p.read_bytes().decode("latin-1") for p in files]
    assert not [b[:200] for b in blobs if pagerduty.routing_key in b]

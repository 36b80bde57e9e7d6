"""The shared report model and its Markdown, HTML and JUnit renderers, on documents shaped as the commands
write them (the lab tests render real runs, and open the HTML in Chromium)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from opsrun.reports import as_html, as_junit, as_markdown
from opsrun.reports.model import from_document

DRIFT = {
    "kind": "drift",
    "run_id": 7,
    "status": "drift",
    "inventory": "lab",
    "deploys": ["nginx"],
    "seconds": 3.1,
    "hosts_checked": ["web1", "web2", "web3"],
    "summary": {"hosts": 3, "drift": 2, "new": 1, "persisting": 1, "resolved": 0, "unknown": 1, "unreachable": 1},
    "findings": [
        {
            "host": "web2",
            "deploy": "nginx",
            "operation": "nginx configuration",
            "verdict": "will_change",
            "detail": ["upload /etc/nginx/nginx.conf"],
            "diff": ["Will modify /etc/nginx/nginx.conf", "@@ -1,2 +1,2 @@", "- keepalive 5;", "+ keepalive 65;"],
            "status": "new",
            "first_seen": "2026-11-23T05:00:00Z",
            "cause": "corrective",
            "fingerprint": "abc",
        },
        {
            "host": "web1",
            "deploy": "nginx",
            "operation": "Site answers <script>",
            "verdict": "verify_failed",
            "detail": ["assert 502 == 200"],
            "status": "persisting",
            "first_seen": "2026-11-20T05:00:00Z",
            "cause": None,
            "fingerprint": "def",
        },
        {
            "host": "web1",
            "deploy": "nginx",
            "operation": "Reload",
            "verdict": "unknown",
            "detail": ["conditional on an earlier operation"],
            "status": None,
            "first_seen": None,
            "cause": None,
            "fingerprint": "ghi",
        },
    ],
    "resolved": [],
    "unreachable": {"web3": "Could not connect"},
}


def test_junit_counts_failures_and_skips_per_host():
    root = ET.fromstring(as_junit.render(from_document(DRIFT)))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "2", "2")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"drift.lab.web1", "drift.lab.web2", "drift.lab.web3"}
    web2 = suites["drift.lab.web2"]
    [case] = web2.iter("testcase")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "will_change"
    assert "+ keepalive 65;" in (failure.text or "")
    assert suites["drift.lab.web1"].find("testcase/skipped") is not None
    assert suites["drift.lab.web3"].find("testcase/skipped").get("message") == "not drift"  # unreachable


def test_html_is_self_contained_and_escapes_what_hosts_report():
    html = as_html.render(from_document(DRIFT, trend=[("2026-11-21 05:00", 0), ("2026-11-22 05:00", 2)]))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "an external URL"
    assert "<script>" not in html and "Site answers &lt;script&gt;" in html
    assert re.search(r'data-key="drift">2<', html) and re.search(r'data-key="unknown">1<', html)
    assert '<span class="add">+ keepalive 65;</span>' in html
    assert html.count("<rect") == 2  # one bar per earlier run


def test_markdown_has_summary_notes_and_a_diff_block():
    md = as_markdown.render(from_document(DRIFT))
    assert md.startswith("# drift of nginx on lab\n")
    assert "| hosts | drift | new | persisting | resolved | unknown | unreachable | seconds |" in md
    assert "- unreachable (not drift): web3: Could not connect" in md
    assert "```diff\nWill modify /etc/nginx/nginx.conf\n@@ -1,2 +1,2 @@\n-keepalive 5;\n+keepalive 65;\n```" in md
    assert "persisting since 2026-11-20T05:00:00Z" in md


def test_apply_and_verify_documents_share_the_model():
    apply = {
        "kind": "rollout",
        "status": "failed",
        "inventory": "lab",
        "deploy": "nginx",
        "dry_run": False,
        "halted": "1 failed host(s), over the failure budget of 0",
        "left_out_of_balancer": ["web2"],
        "hosts": {
            "web1": {
                "outcome": "done",
                "changed": 1,
                "operations": [{"name": "cfg", "changed": True, "success": True}],
            },
            "web2": {"outcome": "failed", "stage": "apply", "reason": "boom", "changed": 0, "operations": []},
        },
    }
    report = from_document(apply)
    assert report.summary["failed hosts"] == 1 and report.summary["changed hosts"] == 1
    assert "left out of the balancer: web2" in report.notes
    junit = ET.fromstring(as_junit.render(report))
    assert junit.get("failures") == "1"
    verify = {
        "kind": "verify",
        "status": "failed",
        "inventory": "lab",
        "suite": "nginx",
        "hosts": {"web1": {"tests": [{"test": "t1", "outcome": "passed"}, {"test": "t2", "outcome": "failed"}]}},
    }
    assert from_document(verify).summary == {
        "hosts": 1,
        "checks": 2,
        "passed": 1,
        "failed": 1,
        "skipped": 0,
        "seconds": 0,
    }

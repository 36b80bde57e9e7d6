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
    assert md.startswith("🟡 **drift of nginx on lab: DRIFT**\n\n# drift of nginx on lab\n")
    assert "**Status: 🟡 drift**" in md
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


def fleet_drift(hosts: int, drifted: tuple[str, ...]) -> dict:
    """A drift document over web1..webN where the `drifted` hosts have one config finding each."""
    names = [f"web{i}" for i in range(1, hosts + 1)]
    finding = DRIFT["findings"][0]
    return {
        **DRIFT,
        "hosts_checked": names,
        "summary": {**DRIFT["summary"], "hosts": hosts, "drift": len(drifted), "unknown": 0, "unreachable": 0},
        "findings": [{**finding, "host": h} for h in drifted],
        "unreachable": {},
    }


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_html_folds_clean_hosts_into_one_line_at_fleet_scale():
    html = as_html.render(from_document(fleet_drift(100, ("web2", "web50", "web99"))))
    lines = [line for line in text_of(html).splitlines() if "hosts clean" in line]
    clean = [f"web{i}" for i in range(1, 101) if i not in (2, 50, 99)]
    assert lines == ["97 hosts clean: " + ", ".join(clean)]
    assert re.findall(r'data-key="quiet_hosts">(\d+) hosts clean', html) == ["97"]
    assert re.findall(r'<h2 id="host-([^"]+)">', html) == ["web2", "web50", "web99"]
    assert "Nothing to report" not in html


def test_markdown_folds_clean_hosts_into_one_line_at_fleet_scale():
    md = as_markdown.render(from_document(fleet_drift(100, ("web2", "web50", "web99"))))
    clean = [f"web{i}" for i in range(1, 101) if i not in (2, 50, 99)]
    assert [line for line in md.splitlines() if "clean" in line] == ["97 hosts clean: " + ", ".join(clean)]
    assert re.findall(r"^## (web\d+)$", md, flags=re.M) == ["web2", "web50", "web99"]


def test_one_clean_host_is_one_host_and_no_clean_host_gives_no_line():
    assert from_document(fleet_drift(2, ("web2",))).quiet_line() == "1 host clean: web1"
    report = from_document(fleet_drift(2, ("web1", "web2")))
    assert report.quiet_line() == "" and "hosts clean" not in as_html.render(report)


def test_html_diff_has_no_empty_line_between_its_lines():
    html = as_html.render(from_document(DRIFT))
    [pre] = re.findall(r'<pre class="diff">(.*?)</pre>', html, flags=re.S)
    assert text_of(pre).split("\n") == [
        "Will modify /etc/nginx/nginx.conf",
        "@@ -1,2 +1,2 @@",
        "- keepalive 5;",
        "+ keepalive 65;",
    ]
    # the empty lines came from block spans each followed by a newline inside the <pre>
    css = html[: html.index("</style>")]
    assert not re.search(r"pre\.diff \.(add|del|hunk) \{[^}]*display: *block", css)


def test_html_folds_a_findings_commands_under_its_diff():
    html = as_html.render(from_document(DRIFT))
    diff_at = html.index('<pre class="diff">')
    details = re.findall(r'<details class="commands"><summary>([^<]*)</summary>\s*<pre>(.*?)</pre>', html, flags=re.S)
    assert details == [("1 command", "upload /etc/nginx/nginx.conf")]
    assert html.index('<details class="commands">') > diff_at
    table = html[html.index('<h2 id="host-web2">') : diff_at]
    assert "upload /etc/nginx/nginx.conf" not in table and "the diff below" in table
    assert "<script" not in html.replace("&lt;script&gt;", "")


def test_markdown_folds_a_findings_commands_under_its_diff():
    md = as_markdown.render(from_document(DRIFT))
    folded = "<details><summary>1 command</summary>\n\n```\nupload /etc/nginx/nginx.conf\n```\n\n</details>"
    assert "+keepalive 65;\n```\n\n" + folded in md
    assert "| nginx: nginx configuration | 🟡 will_change | new, corrective | the diff below |" in md


def test_trend_labels_tell_apart_runs_of_the_same_day():
    whens = ["2026-11-22 05:00", "2026-11-23 05:00", "2026-11-23 14:31", "2026-11-23 14:31", "2026-10"]
    assert as_html.trend_labels(whens) == [
        ("11-22", "05:00"),
        ("11-23", "05:00"),
        ("11-23", "14:31"),
        ("11-23", "14:31 #2"),
        ("2026-10",),
    ]
    html = as_html.render(from_document(DRIFT, trend=[("2026-11-23 05:00", 0), ("2026-11-23 14:31", 2)]))
    labels = re.findall(r'class="label">([^<]*)<', html)
    assert labels == ["11-23", "05:00", "11-23", "14:31"]
    assert html.count("<rect") == 2


def test_verify_folds_hosts_that_passed_every_check_not_those_where_none_ran():
    verify = {
        "kind": "verify",
        "status": "failed",
        "inventory": "lab",
        "suite": "nginx",
        "hosts": {
            "web1": {"tests": [{"test": "t1", "outcome": "passed"}]},
            "web2": {"tests": [{"test": "t1", "outcome": "failed", "message": "assert 1 == 2"}]},
            "web3": {"tests": [{"test": "t1", "outcome": "passed"}]},
            "web4": {"tests": []},
        },
    }
    report = from_document(verify)
    assert report.quiet_line() == "2 hosts passed every check: web1, web3"
    assert report.loud_hosts() == ["web2", "web4"]
    assert "No check ran on this host." in as_markdown.render(report)


def test_apply_folds_unchanged_hosts():
    apply = {
        "kind": "deploy",
        "status": "success",
        "inventory": "lab",
        "deploy": "nginx",
        "hosts": {
            "web1": {"changed": 0, "operations": [{"name": "cfg", "changed": False, "success": True}]},
            "web2": {"changed": 1, "operations": [{"name": "cfg", "changed": True, "success": True}]},
        },
    }
    assert from_document(apply).quiet_line() == "1 host unchanged: web1"
    assert from_document({**apply, "dry_run": True}).quiet_line() == "1 host with nothing to change: web1"

"""Reports read right at a glance: the banner, the badges and the chart bars take their verdict's colour, in
HTML opened in headless Chromium (the computed style, read back by a script the test adds to a copy of the
page: the report itself holds no script) and as markers in Markdown. A DR run with one tier failing, one
degraded and one passing, and a report of each status: passed, degraded, failed, drift, clean, unknown.
Each tier's RTO and RPO month by month is an inline SVG chart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from opsrun.dr.model import FAIL, PASS, Check, DRRun, targets
from opsrun.reports import as_html, as_markdown
from opsrun.reports.model import from_document
from opsrun.settings.models import DRSettings
from tests.conftest import chromium_dom

RGB = {  # reports.verdicts.COLOURS as Chromium computes them
    "passed": "rgb(47, 125, 50)",
    "clean": "rgb(47, 125, 50)",
    "drift": "rgb(154, 103, 0)",
    "degraded": "rgb(194, 65, 12)",
    "failed": "rgb(179, 38, 30)",
    "unknown": "rgb(91, 100, 117)",
}

READ_BACK = """<script>
document.addEventListener("DOMContentLoaded", () => {
  const seen = {
    banner: getComputedStyle(document.querySelector(".first-line")).backgroundColor,
    status: getComputedStyle(document.querySelector("[data-key=status]")).backgroundColor,
    cells: [...document.querySelectorAll("td.verdict")].map(td => [td.textContent, getComputedStyle(td).color]),
  };
  const out = document.createElement("pre");
  out.id = "computed";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>
"""


def computed(html: str, tmp_path: Path) -> dict:
    """What Chromium computes for the banner, the status badge and each verdict cell of `html`."""
    page = tmp_path / f"page-{len(list(tmp_path.iterdir()))}.html"
    page.write_text(html.replace("</body>", READ_BACK + "</body>"))
    dom = chromium_dom(page)
    found = re.search(r'<pre id="computed">(.*?)</pre>', dom, flags=re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def dr_run(month: str = "2026-12") -> DRRun:
    dr = {"systems": {"redis": {"rto_minutes": 1}}, "backups": [{"files": "/b/*.dump", "max_age_hours": 26}]}
    tiers = targets(DRSettings.model_validate(dr), ["postgres", "redis", "mongo"])
    run = DRRun("lab", month, f"{month}-02T03:00:00Z", "ops", "0.1.0", "abc", tiers)
    run.hints = {"mongo": {"rto": "dr-test --drill"}}
    return run


def three_tiers() -> dict:
    """redis failing its RTO target, mongo left degraded by its drill, postgres passing; two earlier months."""
    run = dr_run()
    run.checks = [
        Check("postgres", "failover drill", PASS, ["RTO 1.2 s"], measured={"rto_seconds": 1.2, "rpo_seconds": 0.0}),
        Check("redis", "failover drill", PASS, ["measured RTO 75 s"], measured={"rto_seconds": 75.0}),
        Check("redis", "RPO probe", PASS, measured={"rpo_seconds": 0.01}),
        Check("mongo", "RPO probe", PASS, measured={"rpo_seconds": 0.2}),
    ]
    run.degraded = ["mongo"]
    earlier = [dr_run("2026-10"), dr_run("2026-11")]
    for month, rto in zip(earlier, (40.0, 55.0), strict=True):
        month.checks = [Check("redis", "failover drill", PASS, measured={"rto_seconds": rto, "rpo_seconds": 0.1})]
    run.trend = [
        {"month": m.month, "status": m.status, "failed": 0, "systems": {s["system"]: _tier(s) for s in m.systems()}}
        for m in earlier
    ]
    return run.to_dict()


def _tier(system: dict) -> dict:
    from opsrun.model.documents.dr import tier_numbers

    return tier_numbers(system)


def test_a_dr_run_with_a_failing_a_degraded_and_a_passing_tier(tmp_path):
    doc = three_tiers()
    assert doc["status"] == "failed"
    results = {s["system"]: s["result"] for s in doc["systems"]}
    assert results == {"postgres": "PASS", "redis": "FAIL", "mongo": "DEGRADED"}
    seen = computed(as_html.render(from_document(doc)), tmp_path)
    assert seen["banner"] == seen["status"] == RGB["failed"]
    cells = {text: colour for text, colour in seen["cells"]}
    assert (cells["PASS"], cells["FAIL"], cells["DEGRADED"]) == (RGB["passed"], RGB["failed"], RGB["degraded"])

    md = as_markdown.render(from_document(doc))
    assert md.startswith("🔴 **DEGRADED: mongo could not be put back after the drill**")
    assert "**Status: 🔴 failed**" in md
    assert "| redis | 60.0 s | 75.0 s | 300.0 s | 0.0 s | 🔴 FAIL |" in md
    assert "| mongo | 900.0 s | not drilled (enable with dr-test --drill) | 300.0 s | 0.2 s | 🟠 DEGRADED |" in md


def test_each_tier_has_its_rto_and_rpo_month_by_month_as_an_inline_chart(tmp_path):
    doc = three_tiers()
    html = as_html.render(from_document(doc))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "an external URL"
    dom = chromium_dom(_saved(html, tmp_path))
    redis_rto = re.search(r'<svg[^>]*data-key="rto-redis".*?</svg>', dom, flags=re.S).group(0)
    months = re.findall(r'class="label">([^<]*)<', redis_rto)
    assert months == ["2026-10", "2026-11", "2026-12"]
    bars = re.findall(r'<rect[^>]*class="bar-(\w+)"[^>]*fill="([^"]+)"', redis_rto)
    assert bars == [("passed", "#2f7d32"), ("passed", "#2f7d32"), ("failed", "#b3261e")]  # 40 s, 55 s, 75 s vs 60 s
    assert "RTO (target 60.0 s)" in redis_rto and redis_rto.count('stroke-dasharray="4 3"') == 3
    mongo_rto = re.search(r'<svg[^>]*data-key="rto-mongo".*?</svg>', dom, flags=re.S).group(0)
    assert re.findall(r'class="bar-(\w+)"', mongo_rto) == ["unknown"] * 3 and ">n/d<" in mongo_rto  # never drilled


def _saved(html: str, tmp_path: Path) -> Path:
    page = tmp_path / "report.html"
    page.write_text(html)
    return page


def dr_doc(status: str) -> dict:
    run = dr_run()
    run.checks = [Check("postgres", "RPO probe", FAIL if status == "failed" else PASS, measured={"rpo_seconds": 0.1})]
    run.degraded = ["postgres"] if status == "degraded" else []
    doc = run.to_dict()
    assert doc["status"] == status
    return doc


def drift_doc(status: str) -> dict:
    findings = {
        "drift": [{"host": "web1", "deploy": "nginx", "operation": "cfg", "verdict": "will_change", "detail": []}],
        "clean": [],
        "partial": [],
    }[status]
    return {
        "kind": "drift",
        "status": status,
        "inventory": "lab",
        "deploys": ["nginx"],
        "hosts_checked": ["web1"],
        "summary": {"hosts": 1, "drift": len(findings), "unknown": 0},
        "findings": findings,
        "unreachable": {"web2": "could not connect"} if status == "partial" else {},
    }


@pytest.mark.parametrize(
    ("verdict", "doc"),
    [
        ("passed", lambda: dr_doc("passed")),
        ("degraded", lambda: dr_doc("degraded")),
        ("failed", lambda: dr_doc("failed")),
        ("drift", lambda: drift_doc("drift")),
        ("clean", lambda: drift_doc("clean")),
        ("unknown", lambda: drift_doc("partial")),  # hosts not reached: nobody knows their state
    ],
    ids=["passed", "degraded", "failed", "drift", "clean", "unknown"],
)
def test_each_statuss_banner_has_its_colour_in_chromium_and_its_marker_in_markdown(verdict, doc, tmp_path):
    """On main every banner was red: a DR test that passed opened with a red "PASSED"."""
    report = from_document(doc())
    seen = computed(as_html.render(report), tmp_path)
    assert seen["banner"] == seen["status"] == RGB[verdict]
    marker = {"passed": "🟢", "clean": "🟢", "drift": "🟡", "degraded": "🟠", "failed": "🔴", "unknown": "⚪"}[verdict]
    first, _, rest = as_markdown.render(report).partition("\n")
    assert first.startswith(f"{marker} **") and f"**Status: {marker} {report.status}**" in rest

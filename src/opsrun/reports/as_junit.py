"""JUnit XML rendering of a report, for CI tools: one testsuite per host, one testcase per item; failing
items are <failure>, items that could not be judged (unknown, not reached) are <skipped>."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from opsrun.reports.model import Report


def render(report: Report) -> str:
    root = ET.Element("testsuites", name=report.title)
    total = failures = skipped = 0
    for host in report.hosts:
        items = report.for_host(host)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{report.kind}.{report.inventory}.{host}",
            tests=str(len(items)),
            failures=str(sum(i.failing for i in items)),
            skipped=str(sum(i.skipped for i in items)),
            errors="0",
            timestamp=report.generated.replace(" ", "T").rstrip("Z"),
        )
        if not items:  # a host with nothing to report is a passing check, not a missing one
            ET.SubElement(suite, "testcase", classname=f"{report.kind}.{host}", name="no findings")
            suite.set("tests", "1")
            total += 1
        for i in items:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{report.kind}.{host}" + (f".{i.group}" if i.group else ""),
                name=i.name,
                time=f"{i.seconds or 0:.3f}",
            )
            text = "\n".join([*i.detail, *i.diff])
            if i.failing:
                ET.SubElement(case, "failure", message=f"{i.verdict}: {i.note or i.name}", type=i.verdict).text = text
            elif i.skipped:
                ET.SubElement(case, "skipped", message=i.note or i.verdict).text = text
            total += 1
        failures += sum(i.failing for i in items)
        skipped += sum(i.skipped for i in items)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("skipped", str(skipped))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

"""Renderers of the shared result model, and the one way reports reach the disk: atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

REPORT_FORMATS = ("json", "md", "html", "junit")
SUFFIX = {"json": ".json", "md": ".md", "html": ".html", "junit": ".xml"}


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same folder and a rename: a reader sees the old
    report or the new one, never half of one, and a failed write leaves the old one as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def render_report(run: Any, fmt: str) -> str:
    """A finished run (anything with `document()`: reports.as_json.Renderable) as a report in `fmt`: json, md,
    html or junit."""
    from opsrun.reports import as_html, as_json, as_junit, as_markdown
    from opsrun.reports.model import from_document

    doc = as_json.redacted(run)  # secrets masked here, before any renderer sees the document
    if fmt == "json":
        return as_json.render(doc)
    report = from_document(doc)
    renderer = {"md": as_markdown.render, "html": as_html.render, "junit": as_junit.render}[fmt]
    return renderer(report)


def report_name(doc: Any) -> str:
    """drift-INVENTORY, apply-INVENTORY-DEPLOY, verify-INVENTORY-SUITE, dr-test-INVENTORY-MONTH: the files' name
    in --out, of a run's document (its model or its JSON's dict)."""
    from opsrun.model import documents

    doc = documents.load(doc)
    kind = "apply" if doc.kind == "rollout" else doc.kind
    what = getattr(doc, "deploy", None) or getattr(doc, "suite", None) or getattr(doc, "month", None)
    return "-".join(str(p) for p in (kind, doc.inventory, what) if p)


def write_reports(run: Any, folder: Path) -> list[Path]:
    """Every report format of a finished run in `folder`, each rendered in full before it replaces the
    previous file of its name: a failure while rendering leaves all the old reports in place."""
    name = report_name(run.document())
    rendered = {fmt: render_report(run, fmt) for fmt in REPORT_FORMATS}
    return [write_atomic(folder / f"{name}{SUFFIX[fmt]}", text) for fmt, text in rendered.items()]

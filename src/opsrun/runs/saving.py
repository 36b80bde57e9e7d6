"""Keep each run's JSON document under the project's .opsrun/results/."""

from __future__ import annotations

import time
from pathlib import Path

from opsrun.project import Project
from opsrun.reports import write_atomic


def save(project: Project, name: str, text: str) -> Path:
    """Keep a run's JSON document under .opsrun/results/, timestamped, and as NAME-latest.json."""
    folder = project.state_dir / "results"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = write_atomic(folder / f"{stamp}-{name}.json", text)
    write_atomic(folder / f"{name}-latest.json", text)
    return path

"""JSON rendering: one document per run, the same shape `--format json` prints."""

from __future__ import annotations

import json
from typing import Protocol

from opsrun.model import documents
from opsrun.model.secrets import redact_values


class Renderable(Protocol):
    """A finished run: DeployRun, RolloutRun, VerifyRun, DriftRun, DRRun."""

    def document(self) -> documents.Document: ...


def redacted(result: Renderable | documents.Document) -> documents.Document:
    """The run's document with the secret values that reached it on their way masked, value by value."""
    doc = result if isinstance(result, documents.Document) else result.document()
    return documents.load(redact_values(documents.dump(doc)))


def render(result: Renderable | documents.Document) -> str:
    """The run's JSON document, secrets masked (`redacted`)."""
    return json.dumps(documents.dump(redacted(result)), indent=2) + "\n"

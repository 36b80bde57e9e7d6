"""JSON rendering: one document per run, the same shape `--format json` prints."""

from __future__ import annotations

import json
from typing import Any, Protocol

from opsrun.secrets import redact


class Renderable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def render(result: Renderable) -> str:
    """The run's JSON document; secret values that reached it on their way are masked."""
    return redact(json.dumps(result.to_dict(), indent=2, sort_keys=False)) + "\n"

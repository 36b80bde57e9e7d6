"""JSON rendering: one document per run, the same shape `--format json` prints."""

from __future__ import annotations

import json
from typing import Any, Protocol


class Renderable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def render(result: Renderable) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=False) + "\n"

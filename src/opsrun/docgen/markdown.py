"""Plain text as Markdown that renders as written: code spans kept, emphasis and table characters escaped."""

from __future__ import annotations

import re

_CODE = re.compile(r"(`[^`]*`)")
_SPECIAL = re.compile(r"([\\*_\[\]<>|])")


def escape(text: str) -> str:
    """`text` with Markdown's special characters escaped outside its `code spans` (which render as written)."""
    parts = _CODE.split(text)
    return "".join(part if part.startswith("`") else _SPECIAL.sub(r"\\\1", part) for part in parts)


def code(text: str) -> str:
    """`text` as one code span, whatever backticks it holds."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    """A table cell: one line, escaped (a pipe inside a code span does not split the row)."""
    return escape(" ".join(text.split()))


def paragraphs(text: str) -> str:
    """A docstring-style text: paragraphs kept, lines of each joined, escaped."""
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(escape(block) for block in blocks if block)

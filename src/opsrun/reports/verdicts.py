"""The six verdicts every report is coloured by, and the one palette of them: the HTML banner, badges and
chart bars, and the Markdown status markers. Each status, outcome or check result a run document holds
(success, PASS, will_change, unreachable, ...) reads as one of them."""

from __future__ import annotations

VERDICTS = ("passed", "clean", "drift", "degraded", "failed", "unknown")

COLOURS = {  # white text on each is readable (contrast 4.5:1 or more)
    "passed": "#2f7d32",
    "clean": "#2f7d32",
    "drift": "#9a6700",
    "degraded": "#c2410c",
    "failed": "#b3261e",
    "unknown": "#5b6475",
}

MARKERS = {"passed": "🟢", "clean": "🟢", "drift": "🟡", "degraded": "🟠", "failed": "🔴", "unknown": "⚪"}

ALIASES = {
    "success": "passed",
    "ok": "passed",
    "PASS": "passed",
    "changed": "passed",
    "unchanged": "clean",
    "FAIL": "failed",
    "error": "failed",
    "verify_failed": "failed",
    "will_change": "drift",
    "out_of_balancer": "drift",
    "DEGRADED": "degraded",
    "SKIP": "unknown",
    "skipped": "unknown",
    "unreachable": "unknown",
    "interrupted": "unknown",
    "partial": "unknown",  # drift with hosts not reached: nobody knows theirs
}


def verdict_of(word: str) -> str:
    """The verdict `word` (a status, an outcome, a check result) reads as; unknown for anything else."""
    return word if word in VERDICTS else ALIASES.get(word, "unknown")


def is_verdict(word: str) -> bool:
    """Whether `word` is a verdict or one of the words that read as one (a table cell to badge)."""
    return word in VERDICTS or word in ALIASES


def marker(word: str) -> str:
    """The Markdown status marker of `word`, before it: "🔴 failed"."""
    return f"{MARKERS[verdict_of(word)]} {word}"


def css() -> str:
    """One class per verdict, `.v-NAME`, setting `--v` to its colour."""
    return " ".join(f".v-{name} {{ --v: {colour}; }}" for name, colour in COLOURS.items())

"""What a dry run reports per operation: will it change, its commands and diff, and why it cannot tell
(not idempotent by nature, or conditional on an earlier operation)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from opsrun.results import OperationResult

MAX_COMMANDS_LISTED = 20
MAX_DIFF_LINES = 200  # per operation: a large file's diff is cut there


def operation_result(
    state: Any, host: Any, data: Any, op_hash: str, op_name: Any, idempotent: dict[str, bool]
) -> OperationResult:  # pragma: no cover
    from pyinfra.context import ctx_host, ctx_state

    meta = data.operation_meta
    with ctx_state.use(state), ctx_host.use(host):
        will = bool(meta.will_change)
        condition = predict_if(data.global_arguments.get("_if"))
        if condition is False:
            will = False
        with _logged_diff() as diff:
            commands = [_command_text(c) for c in data.command_generator()] if will else []
    unknown = None
    if will and not idempotent.get(op_hash, True):
        unknown = "not idempotent by nature: it runs every time, so no dry run can tell if it is needed"
    elif will and condition is None:
        unknown = "conditional on an earlier operation (_if): only known when applied"
    return OperationResult(
        op_name(op_hash),
        will,
        True,
        None,
        commands[:MAX_COMMANDS_LISTED],
        unknown is not None,
        unknown=unknown,
        follows=_follows(data.global_arguments.get("_if"), op_name) if will else None,
        diff=diff[:MAX_DIFF_LINES] if will else [],
    )


def predict_if(cond: Any) -> bool | None:
    """In a dry run, what an `_if=` condition will say: pyinfra only evaluates it while executing.

    `_if=op.did_change` (and did_not_change, did_succeed) is predicted from that earlier op's own dry run;
    anything else is unknown (None) and the op is reported as `conditional`.
    """
    if cond is None:
        return True
    conds = cond if isinstance(cond, list) else [cond]
    answers: list[bool | None] = []
    for c in conds:
        meta, name = getattr(c, "__self__", None), getattr(c, "__name__", "")
        combined = _combined(c)
        if combined is not None:  # pyinfra's any_changed(*ops) / all_changed(*ops)
            kind, metas = combined
            changes = [bool(m.will_change) for m in metas]
            answers.append(any(changes) if kind == "any_changed" else all(changes))
        elif meta is None or not hasattr(meta, "will_change"):
            answers.append(None)
        elif name == "did_change":
            answers.append(bool(meta.will_change))
        elif name == "did_not_change":
            answers.append(not meta.will_change)
        elif name == "did_succeed":
            answers.append(True)
        else:
            answers.append(None)
    if False in answers:
        return False
    return None if None in answers else True


def _combined(cond: Any) -> tuple[str, list[Any]] | None:
    """("any_changed" | "all_changed", the operations) for a condition made by pyinfra's helpers of those
    names (a lambda closing over the operations' meta), else None."""
    kind = getattr(cond, "__qualname__", "").split(".")[0]
    cells: tuple[Any, ...] = getattr(cond, "__closure__", None) or ()
    if kind not in ("any_changed", "all_changed") or len(cells) != 1:
        return None
    metas = cells[0].cell_contents
    if not isinstance(metas, tuple) or not all(hasattr(m, "will_change") for m in metas):
        return None
    return kind, list(metas)


def _follows(cond: Any, op_name: Any) -> str | None:
    """`_if=op.did_change`: the name of the operation whose change this one follows (a reload after a config)."""
    meta: Any = getattr(cond, "__self__", None)
    if getattr(cond, "__name__", "") == "did_change" and meta is not None and hasattr(meta, "_hash"):
        return str(op_name(meta._hash))
    return None


ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def _logged_diff() -> Iterator[list[str]]:  # pragma: no cover - worker side
    """The diff lines pyinfra's file operations (and deploys._ops) log while their commands are listed:
    "Will modify PATH", then "@@ -a,b +c,d @@" hunks of "  ", "- " and "+ " lines; colours removed."""
    import logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = ANSI.sub("", record.getMessage()).rstrip()
            if text.startswith("  "):  # a diff line
                lines.append(text[2:])
            elif (said := re.sub(r"^\[[^\]]*\] ", "", text)).startswith("Will "):  # not "Connected (...)"
                lines.append(said)

    log = logging.getLogger("pyinfra")
    handler, level = Collect(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        lines[:] = [line for line in lines if line]


def _command_text(command: Any) -> str:
    if type(command).__name__ == "FileUploadCommand":
        return f"upload {command.dest}"
    if type(command).__name__ == "FileDownloadCommand":
        return f"download {command.src}"
    if type(command).__name__ == "FunctionCommand":  # runs on the controller (deploys/_redis.py, _mongo.py)
        args = ", ".join(map(str, command.args))
        return f"python {command.function.__name__}({args})"
    if hasattr(command, "get_masked_value"):
        return str(command.get_masked_value())
    return repr(command)

"""What a dry run reports per operation: will it change, its commands and diff, and why it cannot tell
(not idempotent by nature, or conditional in a way nobody can know before applying: engine.conditions)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from opsrun.engine.conditions import Prediction, judge
from opsrun.model.results import OperationResult

MAX_COMMANDS_LISTED = 20
MAX_DIFF_LINES = 200  # per operation: a large file's diff is cut there


def operation_result(
    state: Any,
    host: Any,
    data: Any,
    op_hash: str,
    op_name: Any,
    idempotent: dict[str, bool],
    judged: dict[str, Prediction] | None = None,
) -> OperationResult:  # pragma: no cover
    """One operation's prediction on `host`. `judged` holds this host's earlier predictions (op hash -> will it
    change; None: unknown), which a condition on those operations is judged from; this one is added to it."""
    from pyinfra.context import ctx_host, ctx_state

    judged = {} if judged is None else judged
    meta = data.operation_meta
    cond = data.global_arguments.get("_if") or None  # pyinfra's default is [], no condition
    with ctx_state.use(state), ctx_host.use(host):
        judgement = judge(cond, lambda m: predicted(m, judged), lambda m: str(op_name(m._hash)))
        will = bool(meta.will_change) and judgement.holds is not False
        with _logged_diff() as diff:
            commands = [_command_text(c) for c in data.command_generator()] if will else []
    unknown = None
    if will and cond is None and not idempotent.get(op_hash, True):
        unknown = "not idempotent by nature: it runs every time, so no dry run can tell if it is needed"
    elif will and judgement.holds is None:
        unknown = judgement.reason or "conditional (_if): only known when applied"
    judged[op_hash] = None if unknown else will
    return OperationResult(
        op_name(op_hash),
        will,
        True,
        None,
        commands[:MAX_COMMANDS_LISTED],
        unknown is not None,
        unknown=unknown,
        follows=_follows(cond, op_name) if will else None,
        diff=diff[:MAX_DIFF_LINES] if will else [],
    )


def predicted(meta: Any, judged: dict[str, Prediction]) -> Prediction:
    """An earlier operation's predicted change on this host: as judged (its own condition counted), or its
    dry run's `will_change`."""
    op_hash = getattr(meta, "_hash", None)
    if op_hash is not None and op_hash in judged:
        return judged[op_hash]
    return bool(meta.will_change)


def predict_if(cond: Any) -> bool | None:
    """In a dry run, what an `_if=` condition will say (pyinfra only evaluates it while executing), from the
    earlier operations' own dry runs; None when nobody can know before applying (see engine.conditions)."""
    return judge(cond, lambda m: predicted(m, {}), lambda m: str(getattr(m, "_hash", "an operation"))).holds


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
    lines: list[str] = []
    with _diff_lines(lines.append):
        yield lines
    lines[:] = [line for line in lines if line]


@contextlib.contextmanager
def diffs_by_operation() -> Iterator[dict[tuple[str, str], list[str]]]:  # pragma: no cover - worker side
    """While a real apply runs with `--diff` (pyinfra's DIFF config): the diff lines each operation logs as
    it runs on each host, by (host name, operation hash). Hosts run in greenlets, each with its own
    `ctx_host`, and pyinfra sets the host's `current_op_hash` while the operation's commands are made."""
    from pyinfra.context import ctx_host

    found: dict[tuple[str, str], list[str]] = {}

    def keep(line: str) -> None:
        host = ctx_host.get()
        op_hash = getattr(host, "current_op_hash", None)
        if host is not None and op_hash and line:
            found.setdefault((host.name, op_hash), []).append(line)

    with _diff_lines(keep):
        yield found


@contextlib.contextmanager
def _diff_lines(keep: Callable[[str], None]) -> Iterator[None]:  # pragma: no cover - worker side
    """Hand each diff line of the "pyinfra" logger to `keep`, without colours, while the block runs."""
    import logging

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = ANSI.sub("", record.getMessage()).rstrip()
            if text.startswith("  "):  # a diff line
                keep(text[2:])
            elif (said := re.sub(r"^\[[^\]]*\] ", "", text)).startswith("Will "):  # not "Connected (...)"
                keep(said)

    log = logging.getLogger("pyinfra")
    handler, level = Collect(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


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

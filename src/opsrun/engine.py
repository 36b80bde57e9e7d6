"""The one place that talks to pyinfra: apply or dry-run a deploy on a set of hosts, return plain results.

Each run happens in a fresh worker process (`python -m opsrun.engine`), for three measured reasons
(PYINFRA-NOTES §1, §2): importing pyinfra_cli monkey-patches the whole process with gevent; pyinfra keeps
process-wide caches (file hashes, compiled deploy files, known_hosts) that go stale between runs; and a
State needs a fresh Inventory every time. The parent sends the loaded inventory and the request (pickle
over stdin), the worker answers with a `DeployRun` in a result file. The parent never imports pyinfra.

Deploy files are loaded with pyinfra's CLI semantics (`is_cli = True`, `load_deploy_file`), so operations
are identified by their line in the deploy file exactly as `pyinfra INVENTORY DEPLOY` does.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrun.errors import OpsrunError
from opsrun.inventory import Inventory
from opsrun.project import Project
from opsrun.results import DeployRun, HostRun, OperationResult

MAX_COMMANDS_LISTED = 20
MAX_DIFF_LINES = 200  # per operation: a large file's diff is cut there
MAX_OUTPUT_LINES = 40


@dataclass(frozen=True)
class Request:
    project_root: str
    inventory: Inventory
    deploy_name: str
    deploy_path: str
    hosts: list[str]
    dry_run: bool
    connect_timeout: int = 10
    connect_only: bool = False


def check_connect(project: Project, inventory: Inventory, hosts: list[str]) -> dict[str, str | None]:
    """Connect to `hosts` over SSH as a deploy would (same keys, known_hosts, checks); per host the error or None."""
    request = Request(str(project.root), inventory, "", "", hosts, dry_run=True, connect_only=True)
    return {h.name: h.error for h in _run_worker(request, timeout=120).hosts}


def run_deploy(
    project: Project,
    inventory: Inventory,
    deploy: str,
    hosts: list[str],
    *,
    dry_run: bool = False,
    timeout: float | None = None,
) -> DeployRun:
    """Apply (or dry-run) deploys/DEPLOY.py on `hosts` of `inventory`, in parallel, in a worker process."""
    request = Request(str(project.root), inventory, deploy, str(project.deploy_path(deploy)), hosts, dry_run)
    return _run_worker(request, timeout)


def _run_worker(request: Request, timeout: float | None) -> DeployRun:
    with tempfile.TemporaryDirectory(prefix="opsrun-engine-") as tmp:
        result_path = Path(tmp) / "result.pickle"
        env = {**os.environ, "OPSRUN_ENGINE_RESULT": str(result_path)}
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
        proc = subprocess.run(
            [sys.executable, "-m", "opsrun.engine"],
            input=pickle.dumps(request),
            capture_output=True,  # the worker's output is pyinfra's log and deploy prints: passed on to stderr
            env=env,
            timeout=timeout,
            check=False,
            start_new_session=True,  # Ctrl-C is the rollout's to handle: it lets a running apply finish
        )
        stderr = (proc.stdout + proc.stderr).decode(errors="replace")
        if stderr:
            sys.stderr.write(stderr)
        if not result_path.exists():
            tail = "\n".join(stderr.strip().splitlines()[-10:])
            raise OpsrunError(f"the pyinfra worker exited {proc.returncode} without a result:\n{tail}")
        outcome = pickle.loads(result_path.read_bytes())  # noqa: S301 - our own worker wrote it
    if isinstance(outcome, OpsrunError):
        raise outcome
    assert isinstance(outcome, DeployRun)
    return outcome


# ---------------------------------------------------------------- worker side: everything below imports pyinfra


def _worker(request: Request) -> DeployRun:  # pragma: no cover - runs in the worker process, tested via the lab
    import logging

    import gevent
    import pyinfra
    from pyinfra.api.config import Config
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.inventory import Inventory as PyInventory
    from pyinfra.api.operations import run_ops
    from pyinfra.api.state import BaseStateCallback, State, StateStage
    from pyinfra.context import ctx_host, ctx_inventory, ctx_state
    from pyinfra_cli.util import load_deploy_file

    idempotent = _record_idempotency()
    started = time.monotonic()
    gevent.get_hub().exception_stream = None  # errors in operations are reported in the results instead
    pyinfra.is_cli = True  # CLI semantics: op identity by line number (PYINFRA-NOTES §3)
    logging.getLogger("pyinfra").setLevel(logging.WARNING)
    if request.project_root not in sys.path:
        sys.path.insert(0, request.project_root)  # deploys may import helpers as `deploys._ops`, as in the CLI
    inv = request.inventory
    py_inv = PyInventory((inv.all_hosts, inv.all_data), **inv.groups)
    state = State(check_for_changes=request.dry_run)
    state.cwd = request.project_root
    ctx_state.set(state)
    ctx_inventory.set(py_inv)  # `from pyinfra import inventory` in deploys, as under pyinfra's CLI
    config = Config(
        FAIL_PERCENT=None,
        CONNECT_TIMEOUT=request.connect_timeout,
        PARALLEL=max(1, len(request.hosts)),
        DIFF=request.dry_run,  # file operations log what each file would become (read back below)
    )
    state.init(py_inv, config, initial_limit=[py_inv.get_host(n) for n in request.hosts])

    connect_errors: dict[str, str] = {}

    class Errors(BaseStateCallback):
        @staticmethod
        def host_connect_error(state: Any, host: Any, error: Any) -> None:
            connect_errors[host.name] = str(error.args[0] if getattr(error, "args", None) else error)

    state.add_callback_handler(Errors())
    host_errors: dict[str, str] = {}
    try:
        state.set_stage(StateStage.Connect)
        connect_all(state)
        state.set_stage(StateStage.Prepare)
        if state.inventory.get_active_hosts() and not request.connect_only:
            load_deploy_file(state, request.deploy_path)
            if not request.dry_run:
                state.set_stage(StateStage.Execute)
                run_ops(state)
    except PyinfraError as exc:
        for h in state.inventory.get_active_hosts():
            host_errors.setdefault(h.name, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - an error in deploy code: report it against every host
        cause = exc.__cause__ or exc
        text = f"{request.deploy_path}: {type(cause).__name__}: {cause}"
        for name in request.hosts:
            host_errors.setdefault(name, text)
    finally:
        state.set_stage(StateStage.Disconnect)
        disconnect_all(state)

    def op_name(op_hash: str) -> str:
        names = state.get_op_meta(op_hash).names
        return ", ".join(sorted(names)) if names else op_hash

    hosts: list[HostRun] = []
    op_order = state.get_op_order() if not host_errors else [h for h in state.op_meta]
    for name in request.hosts:
        host = py_inv.get_host(name)
        ops: list[OperationResult] = []
        for op_hash in op_order:
            data = state.ops.get(host, {}).get(op_hash)
            if data is None:
                continue
            meta = data.operation_meta
            if request.dry_run:
                with ctx_state.use(state), ctx_host.use(host):
                    will = bool(meta.will_change)
                    condition = _predict_if(data.global_arguments.get("_if"))
                    if condition is False:
                        will = False
                    with _logged_diff() as diff:
                        commands = [_command_text(c) for c in data.command_generator()] if will else []
                unknown = None
                if will and not idempotent.get(op_hash, True):
                    unknown = "not idempotent by nature: it runs every time, so no dry run can tell if it is needed"
                elif will and condition is None:
                    unknown = "conditional on an earlier operation (_if): only known when applied"
                ops.append(
                    OperationResult(
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
                )
            elif not meta.is_complete():
                if name in host_errors and all(op.success for op in ops):  # the op that raised
                    ops.append(OperationResult(op_name(op_hash), False, False, host_errors[name]))
            else:
                error = None
                if not meta.did_succeed():
                    out = meta.stderr_lines or meta.stdout_lines
                    error = "\n".join(out[-10:]) or "command failed with no output"
                output = meta.stdout_lines[-MAX_OUTPUT_LINES:] if meta.did_change() else []
                ops.append(
                    OperationResult(op_name(op_hash), meta.did_change(), meta.did_succeed(), error, output=output)
                )
        error = connect_errors.get(name) or host_errors.get(name)
        if error is None and host in state.failed_hosts and all(op.success for op in ops):
            error = "failed (see the log above)"
        hosts.append(HostRun(name, ops, error))
    return DeployRun(inv.name, request.deploy_name, request.dry_run, hosts, time.monotonic() - started)


def _record_idempotency() -> dict[str, bool]:  # pragma: no cover - worker side
    """Map op hash -> the operation's `is_idempotent` (server.shell, apt.update, ... are not).

    pyinfra does not keep the op function in state.op_meta (PYINFRA-NOTES §4), so the worker wraps the two
    internals that see it during one operation call: `generate_operation_name` (gets the function) and
    `ensure_shared_op_meta` (gets the hash). Nothing yields between them within one call. pyinfra is pinned to 3.10.
    """
    import importlib

    op_module: Any = importlib.import_module("pyinfra.api.operation")  # the module, not the decorator of that name
    seen: dict[str, bool] = {}
    current: list[bool] = [True]
    generate, ensure = op_module.generate_operation_name, op_module.ensure_shared_op_meta

    def generate_operation_name(func: Any, *args: Any, **kwargs: Any) -> Any:
        current[0] = bool(getattr(func, "is_idempotent", True))
        return generate(func, *args, **kwargs)

    def ensure_shared_op_meta(state: Any, op_hash: str, *args: Any, **kwargs: Any) -> Any:
        seen[op_hash] = current[0]
        return ensure(state, op_hash, *args, **kwargs)

    op_module.generate_operation_name = generate_operation_name
    op_module.ensure_shared_op_meta = ensure_shared_op_meta
    return seen


def _predict_if(cond: Any) -> bool | None:
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


def _worker_main() -> None:  # pragma: no cover - the worker process entry point
    request = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - sent by our own parent process
    try:
        outcome: object = _worker(request)
    except OpsrunError as exc:
        outcome = exc
    Path(os.environ["OPSRUN_ENGINE_RESULT"]).write_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    _worker_main()

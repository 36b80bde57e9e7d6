"""The pyinfra side of the engine: run one Request in this fresh worker process and answer a DeployRun.

`python -m opsrun.engine` lands here (`main`). In order: a pyinfra State for the request's hosts, connect,
take the hosts' leases over those connections, load the deploy per host (a deploy that raises fails that host
only) under each host's clock, run the operations (or list them, for a dry run), give the leases back,
disconnect, and assemble per host what happened. Only the engine package imports pyinfra, and only in here
(and in its clocks, dry-run and hooks helpers), inside functions: the parent process never does.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsrun.engine import Request, escalation, hooks
from opsrun.engine.clocks import HostClocks
from opsrun.engine.dry_run import MAX_DIFF_LINES, diffs_by_operation, operation_result
from opsrun.errors import OpsrunError
from opsrun.hosts import leases
from opsrun.hosts.leases import LeaseAnswer, LeaseRequest
from opsrun.model import secret_sources
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.support import logs, progress

MAX_OUTPUT_LINES = 40


@dataclass
class Seen:
    """What the worker learns per host as it goes: its error, whether it was unreachable, what its lease said,
    and (when its own clock ran out) the "timed out" message its failed operation reports."""

    errors: dict[str, str] = field(default_factory=dict)
    unreached: set[str] = field(default_factory=set)
    leases: dict[str, LeaseAnswer] = field(default_factory=dict)
    expired: dict[str, str] = field(default_factory=dict)
    diffs: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (host, op hash) -> --diff lines
    words: hooks.Words = field(default_factory=dict)  # the host's own words for a command or upload that failed


def run(request: Request, events: Path | None = None) -> DeployRun:  # pragma: no cover - the worker process
    import gevent
    from pyinfra.api.connect import disconnect_all
    from pyinfra.api.state import StateStage
    from pyinfra_cli.util import exec_file  # first: importing pyinfra_cli monkey-patches with gevent

    idempotent = hooks.record_idempotency()
    stopping = hooks.stop_between_operations()
    hooks.connection_loss_fails_the_host()
    hooks.sudo_never_prompts()
    started = time.monotonic()
    gevent.get_hub().exception_stream = None  # errors in operations are reported in the results instead
    state, py_inv = _new_state(request)
    seen = Seen(words=hooks.keep_failure_words())
    state.add_callback_handler(_connect_errors(seen))
    if events is not None:
        state.add_callback_handler(hooks.progress_events(events))
    watchdogs: list[Any] = []
    try:
        active = _connect(state, request, seen)
        if request.connect_only or not active:
            return DeployRun(
                request.inventory.name,
                request.deploy_name,
                request.dry_run,
                _host_runs(request, seen.errors, seen.unreached),
                leases=seen.leases,
            )
        _deploy(state, request, active, seen, exec_file, watchdogs)
    finally:
        for w in watchdogs:
            w.kill(block=False)
        _release_leases(state, request, seen.leases)
        state.set_stage(StateStage.Disconnect)
        disconnect_all(state)
    return _results(request, state, py_inv, seen, idempotent, started, stopping)


def _new_state(request: Request) -> tuple[Any, Any]:  # pragma: no cover - worker side
    """pyinfra's State and Inventory for the request, set up as pyinfra's CLI does."""
    import pyinfra
    from pyinfra.api.config import Config
    from pyinfra.api.inventory import Inventory as PyInventory
    from pyinfra.api.state import State
    from pyinfra.context import ctx_inventory, ctx_state

    pyinfra.is_cli = True  # CLI semantics: an operation is identified by its line in the deploy file
    _log_records(request.verbosity)
    if request.project_root not in sys.path:
        sys.path.insert(0, request.project_root)  # deploys may import helpers as `deploys._ops`, as in the CLI
    inv = request.inventory
    overrides = dict(inv.overrides) | ({"ssh_config_file": request.ssh_config_file} if request.ssh_config_file else {})
    py_inv = PyInventory((inv.all_hosts, inv.all_data), override_data=overrides, **inv.groups)
    state = State(check_for_changes=request.dry_run)
    state.cwd = request.project_root
    ctx_state.set(state)
    ctx_inventory.set(py_inv)  # `from pyinfra import inventory` in deploys, as under pyinfra's CLI
    config = Config(
        FAIL_PERCENT=None,
        CONNECT_TIMEOUT=request.connect_timeout,
        PARALLEL=max(1, min(request.forks or len(request.hosts), len(request.hosts))),
        DIFF=request.dry_run or request.diff,  # file operations log what each file becomes (read back below)
    )
    state.init(py_inv, config, initial_limit=[py_inv.get_host(n) for n in request.hosts])
    return state, py_inv


def _log_records(verbosity: int) -> None:  # pragma: no cover - worker side
    """Every log record (pyinfra's, paramiko's) as one tagged line of this worker's output, for the parent to
    route (opsrun.support.logs): from INFO, everything at -vv."""
    import logging

    class Tagged(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(logs.record_line(record))

    level = logging.DEBUG if verbosity >= logs.RAW else logging.INFO
    root = logging.getLogger()
    root.addHandler(Tagged(level))
    root.setLevel(level)
    logging.getLogger("pyinfra").setLevel(level)


def _connect_errors(seen: Seen) -> Any:  # pragma: no cover - worker side
    """The state callback that records a host pyinfra could not connect to."""
    from pyinfra.api.state import BaseStateCallback

    class Errors(BaseStateCallback):
        @staticmethod
        def host_connect_error(state: Any, host: Any, error: Any) -> None:
            reason = str(error.args[0] if getattr(error, "args", None) else error)
            seen.unreached.add(host.name)
            seen.errors[host.name] = could_not_connect(
                host.name, host.data.get("ssh_hostname"), host.data.get("ssh_port"), reason
            )

    return Errors()


def _connect(state: Any, request: Request, seen: Seen) -> list[Any]:  # pragma: no cover - worker side
    """Connect every host; with a lease asked for, take it on each host reached. The hosts to go on with:
    those that answered (none when an acquire found a host leased by another run: what was taken goes back)."""
    from pyinfra.api.connect import connect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.state import StateStage

    state.set_stage(StateStage.Connect)
    with contextlib.suppress(PyinfraError):  # "No hosts remaining!": every host is in host_errors
        connect_all(state)
    active = escalation.escalated(state, list(state.inventory.get_active_hosts()), seen.errors)
    if request.lease is not None and active:
        seen.leases = _leases(state, active, request.lease)
        refused = [h for h in active if not seen.leases[h.name].taken]
        for h in refused:
            seen.errors[h.name] = "leased by another run: " + seen.leases[h.name].describe()
        if refused and request.lease.action == "acquire":  # touch nothing: give back what was taken
            taken = [h for h in active if seen.leases[h.name].taken]
            _leases(state, taken, LeaseRequest("release", request.lease.owner, request.lease.holder))
            active = []
    return active


def _deploy(
    state: Any, request: Request, active: list[Any], seen: Seen, exec_file: Any, watchdogs: list[Any]
) -> None:  # pragma: no cover - worker side
    """Load the deploy on each host under its clock (watched by a greenlet put in `watchdogs`), then run its
    operations unless this is a dry run; a host whose connection went away is failed saying so."""
    import gevent
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.state import StateStage

    stage = "dry-run" if request.dry_run else "apply"
    clock = HostClocks({h.name: request.deadlines[h.name] for h in active})
    seen.expired = clock.expired
    state.add_callback_handler(clock.callbacks())
    watchdogs.append(gevent.spawn(clock.watch, active, stage, seen.errors, hooks.STOP_NOW))
    state.set_stage(StateStage.Prepare)
    _load_for_each_host(state, exec_file, request.deploy_path, request.project_root, seen.errors, clock)
    if not request.dry_run and state.inventory.get_active_hosts():
        from pyinfra.api.operations import run_ops

        state.set_stage(StateStage.Execute)
        watching = diffs_by_operation() if request.diff else contextlib.nullcontext(seen.diffs)
        # "No hosts remaining!": each host's error is recorded
        with contextlib.suppress(PyinfraError), watching as seen.diffs:
            run_ops(state)
    for host in state.inventory.iter_activated_hosts():
        if host.name not in seen.errors and not _connected(host):
            seen.errors[host.name] = "the connection was lost: the host went away or stopped answering"


def _release_leases(state: Any, request: Request, answers: dict[str, LeaseAnswer]) -> None:  # pragma: no cover
    """A run that acquired leases gives back those it holds, at its end."""
    if request.lease is not None and request.lease.action == "acquire" and not request.connect_only:
        held = [h for h in state.inventory.iter_activated_hosts() if answers.get(h.name, LeaseAnswer(False)).taken]
        with contextlib.suppress(Exception):  # an unreachable host keeps its lease until it expires
            _leases(state, held, LeaseRequest("release", request.lease.owner, request.lease.holder))


def _results(
    request: Request,
    state: Any,
    py_inv: Any,
    seen: Seen,
    idempotent: dict[str, bool],
    started: float,
    stopping: list[str],
) -> DeployRun:  # pragma: no cover - worker side
    """The DeployRun: per host, what each operation did (or, for a dry run, would do), and its error."""

    def op_name(op_hash: str) -> str:
        names = state.get_op_meta(op_hash).names
        return ", ".join(sorted(names)) if names else op_hash

    try:
        op_order = state.get_op_order()
    except Exception:  # noqa: BLE001 - a host whose deploy raised half-way leaves no consistent order
        op_order = list(state.op_meta)
    hosts = [
        _host_run(request, state, n, py_inv.get_host(n), op_order, op_name, seen, idempotent) for n in request.hosts
    ]
    interrupted = None
    not_run = f"; not run: {', '.join(op_name(h) for h in stopping)}" if stopping else ""
    if hooks.STOP_NOW.is_set():
        interrupted = f"interrupted: stopped now (a second Ctrl-C): the commands running were ended{not_run}"
    elif stopping:
        interrupted = f"interrupted: stopped between operations{not_run}"
    return DeployRun(
        request.inventory.name,
        request.deploy_name,
        request.dry_run,
        hosts,
        time.monotonic() - started,
        interrupted=interrupted,
        leases=seen.leases,
    )


def _host_run(
    request: Request,
    state: Any,
    name: str,
    host: Any,
    op_order: list[str],
    op_name: Any,
    seen: Seen,
    idempotent: dict[str, bool],
) -> HostRun:  # pragma: no cover - worker side
    """One host's operations in run order: done (or predicted, for a dry run) with their errors."""
    ops: list[OperationResult] = []
    judged: dict[str, bool | None] = {}  # dry run: each operation's prediction, for the conditions of later ones
    for op_hash in op_order:
        data = state.ops.get(host, {}).get(op_hash)
        if data is None:
            continue
        meta = data.operation_meta
        if name in seen.errors and request.dry_run:
            continue  # its dry run did not finish: no prediction is reported for it
        if request.dry_run:
            ops.append(operation_result(state, host, data, op_hash, op_name, idempotent, judged))
        elif not meta.is_complete():
            continue  # not run on this host: it failed before, or the run stopped
        else:
            error = None
            if not meta.did_succeed():
                out = meta.stderr_lines or meta.stdout_lines
                words = seen.words.get((name, op_hash))
                error = seen.expired.get(name) or words or "\n".join(out[-10:]) or "command failed with no output"
            output = meta.stdout_lines[-MAX_OUTPUT_LINES:] if meta.did_change() else []
            diff = seen.diffs.get((name, op_hash), [])[:MAX_DIFF_LINES] if meta.did_change() else []
            ops.append(
                OperationResult(
                    op_name(op_hash), meta.did_change(), meta.did_succeed(), error, output=output, diff=diff
                )
            )
    error = seen.errors.get(name)
    if error is None and host in state.failed_hosts and all(op.success for op in ops):
        error = "failed (see the log above)"
    return HostRun(name, ops, error, reached=name not in seen.unreached)


def could_not_connect(host: str, address: object, port: object, reason: str) -> str:
    """The one line for a host that cannot be reached, whoever tried (the engine, the verifier)."""
    reason = reason.strip().splitlines()[-1] if reason.strip() else "no reason given"
    return f"could not connect to {host} ({address or host}:{port or 22}): {reason}"


def _host_runs(request: Request, errors: dict[str, str], unreached: set[str]) -> list[HostRun]:
    return [HostRun(h, [], errors.get(h), reached=h not in unreached) for h in request.hosts]


def _connected(host: Any) -> bool:  # pragma: no cover - worker side
    """Its SSH transport is still up (a connector without one, pyinfra's @local, always is)."""
    if not hasattr(host.connector, "client"):
        return True
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    return transport is not None and transport.is_active()


def _load_for_each_host(
    state: Any, exec_file: Any, path: str, root: str, host_errors: dict[str, str], clock: HostClocks
) -> None:  # pragma: no cover
    """pyinfra's load_deploy_file, except that a deploy that raises on one host fails that host only."""
    import gevent
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.context import ctx_config, ctx_host

    state.current_deploy_filename = path

    def load(host: Any) -> BaseException | None:
        clock.start(host.name)
        try:
            with ctx_config.use(state.config.copy()), ctx_host.use(host):
                exec_file(path)
        except Exception as exc:  # noqa: BLE001 - the deploy's own error, reported for this host
            return exc
        finally:
            clock.stop(host.name)
        return None

    greenlets = {state.pool.spawn(load, h): h for h in state.inventory.get_active_hosts()}
    gevent.joinall(list(greenlets))
    failed = set()
    for greenlet, host in greenlets.items():
        if greenlet.value is not None:
            host_errors.setdefault(host.name, deploy_error(greenlet.value, path, root))
            failed.add(host)
    with contextlib.suppress(PyinfraError):  # "No hosts remaining!"
        state.fail_hosts(failed)


def deploy_error(exc: BaseException, path: str, root: str) -> str:
    """`deploys/x.py:12: RuntimeError: message`: the deploy's own error at its own line."""
    cause = getattr(exc, "exception", None) or exc.__cause__ or exc  # pyinfra_cli wraps it
    where = os.path.relpath(path, root)
    for frame, line in traceback.walk_tb(cause.__traceback__ or getattr(cause, "_traceback", None)):
        if frame.f_code.co_filename.startswith(root):
            where = f"{os.path.relpath(frame.f_code.co_filename, root)}:{line}"
    try:
        text = str(cause)
    except Exception:  # noqa: BLE001 - an exception whose __str__ itself fails
        text = repr(cause)
    return f"{where}: {type(cause).__name__}: {text}"


def _leases(state: Any, hosts: list[Any], request: LeaseRequest) -> dict[str, LeaseAnswer]:  # pragma: no cover
    """Run the lease shell on each host over its open connection, all at once."""
    import gevent
    from pyinfra.api.command import QuoteString, StringCommand

    command = StringCommand("sh", "-c", QuoteString(leases.script(request)))

    def one(host: Any) -> LeaseAnswer:
        try:
            _ok, output = host.run_shell_command(
                command, print_output=False, print_input=False, **escalation.sudo_arguments(host.data)
            )
        except Exception as exc:  # noqa: BLE001 - the connection dropped: no lease
            return LeaseAnswer(False, previous_holder=f"{type(exc).__name__}: {exc}")
        return leases.parse(" ".join(output.stdout_lines), request.owner)

    greenlets = {h.name: state.pool.spawn(one, h) for h in hosts}
    gevent.joinall(list(greenlets.values()))
    return {name: g.value for name, g in greenlets.items()}


def main() -> None:  # pragma: no cover - the worker process entry point
    """Import pyinfra, then wait for the request: a spare worker (engine.spare) is ready before it is asked.
    An empty stdin means it was not needed after all."""
    signal.signal(signal.SIGUSR1, lambda _s, _f: hooks.STOP_ASKED.set())  # a stop may come before run() begins
    signal.signal(signal.SIGUSR2, hooks.stop_now)
    import pyinfra_cli.util  # noqa: F401 - the bulk of pyinfra; importing pyinfra_cli monkey-patches with gevent

    message = sys.stdin.buffer.read()
    if not message:
        return
    result_path, request = pickle.loads(message)  # noqa: S301 - sent by our own parent process
    secret_sources.preload(request.secrets)  # what the controller read: the deploys ask no one again
    try:
        outcome: object = run(request, Path(result_path).with_name(progress.EVENTS))
    except OpsrunError as exc:
        outcome = exc
    Path(result_path).write_bytes(pickle.dumps(outcome))
    # Its connections are closed and its result written: skip the interpreter's teardown (gevent's hub,
    # paramiko's threads), a fixed cost of every run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

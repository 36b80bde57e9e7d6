"""The one place that talks to pyinfra: apply or dry-run a deploy on a set of hosts, return plain results.

Each run happens in a fresh worker process (`python -m opsrun.engine`), for three reasons measured on
pyinfra 3.10: importing pyinfra_cli monkey-patches the whole process with gevent; pyinfra keeps
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
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsrun import leases, processes
from opsrun.deadlines import DEFAULTS, timed_out
from opsrun.errors import OpsrunError
from opsrun.inventory import Inventory
from opsrun.leases import LeaseAnswer, LeaseRequest
from opsrun.project import Project
from opsrun.results import DeployRun, HostRun, OperationResult

MAX_COMMANDS_LISTED = 20
MAX_DIFF_LINES = 200  # per operation: a large file's diff is cut there
MAX_OUTPUT_LINES = 40
DEFAULT_DEADLINE = DEFAULTS["apply"]


@dataclass(frozen=True)
class Request:
    project_root: str
    inventory: Inventory
    deploy_name: str
    deploy_path: str
    hosts: list[str]
    dry_run: bool
    connect_timeout: float = 10
    connect_only: bool = False
    deadlines: dict[str, float] = field(default_factory=dict)  # host -> seconds for its apply / dry run
    lease: LeaseRequest | None = None


@dataclass(frozen=True)
class ConnectCheck:
    """Per host: the error (None: it answered), and what its lease said when one was asked for."""

    errors: dict[str, str | None]
    leases: dict[str, LeaseAnswer] = field(default_factory=dict)


def check_connect(
    project: Project,
    inventory: Inventory,
    hosts: list[str],
    *,
    connect_timeout: float = 10,
    lease: LeaseRequest | None = None,
) -> ConnectCheck:
    """Connect to `hosts` over SSH as a deploy would (same keys, known_hosts, checks); with `lease`, also take,
    renew or release each host's lease over that connection."""
    request = Request(
        str(project.root), inventory, "", "", hosts, True, connect_timeout, connect_only=True, lease=lease
    )
    run = _run_worker(request, backstop=connect_timeout + 60, stage="connect")
    return ConnectCheck({h.name: h.error for h in run.hosts}, run.leases)


def run_deploy(
    project: Project,
    inventory: Inventory,
    deploy: str,
    hosts: list[str],
    *,
    dry_run: bool = False,
    deadlines: dict[str, float] | None = None,
    connect_timeout: float = 10,
    lease: LeaseRequest | None = None,
    stop: threading.Event | None = None,
) -> DeployRun:
    """Apply (or dry-run) deploys/DEPLOY.py on `hosts` of `inventory`, in parallel, in a worker process.

    `deadlines` (host -> seconds, default 30 min) bounds each host's stage: a host past it fails with
    "timed out after N s in stage apply" and the others finish. `stop` set (SIGINT/SIGTERM): a real apply
    stops at its next safe point, between two operations; a dry run, which changes nothing, stops at once.
    """
    deadlines = {h: (deadlines or {}).get(h, DEFAULT_DEADLINE) for h in hosts}
    request = Request(
        str(project.root),
        inventory,
        deploy,
        str(project.deploy_path(deploy)),
        hosts,
        dry_run,
        connect_timeout,
        deadlines=deadlines,
        lease=lease,
    )
    backstop = connect_timeout + max(deadlines.values(), default=0) + 60
    return _run_worker(request, backstop=backstop, stage="dry-run" if dry_run else "apply", stop=stop)


def _run_worker(request: Request, *, backstop: float, stage: str, stop: threading.Event | None = None) -> DeployRun:
    """Run the worker; on `stop`, ask it to stop between operations (a dry run is simply ended). Past the
    backstop (every host's deadline and a margin: the worker itself no longer answers) it is killed."""
    with tempfile.TemporaryDirectory(prefix="opsrun-engine-") as tmp:
        result_path = Path(tmp) / "result.pickle"
        log_path = Path(tmp) / "worker.log"
        env = {**os.environ, "OPSRUN_ENGINE_RESULT": str(result_path)}
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
        with log_path.open("w+b") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "opsrun.engine"],
                stdin=subprocess.PIPE,
                stdout=log,  # the worker's output is pyinfra's log and deploy prints: passed on to stderr
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the controller only; it decides what the worker does
            )
            assert proc.stdin is not None
            proc.stdin.write(pickle.dumps(request))
            proc.stdin.close()
            gentle = None if request.dry_run or request.connect_only else signal.SIGUSR1  # between operations
            ended = processes.supervise(proc, backstop=backstop, stop=stop, what="the pyinfra worker", gentle=gentle)
            log.seek(0)
            output = log.read().decode(errors="replace")
        if output:
            sys.stderr.write(output)
        if ended is not None:  # killed: nothing it did is known beyond "it did not finish"
            return DeployRun(
                request.inventory.name,
                request.deploy_name,
                request.dry_run,
                [HostRun(h, [], ended) for h in request.hosts],
                interrupted=ended if stop is not None and stop.is_set() else None,
            )
        if not result_path.exists():
            tail = "\n".join(output.strip().splitlines()[-10:])
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
    from pyinfra.api.state import BaseStateCallback, State, StateStage
    from pyinfra.context import ctx_inventory, ctx_state
    from pyinfra_cli.util import exec_file  # first: importing pyinfra_cli monkey-patches with gevent

    idempotent = _record_idempotency()
    stopping = _stop_between_operations()
    started = time.monotonic()
    gevent.get_hub().exception_stream = None  # errors in operations are reported in the results instead
    pyinfra.is_cli = True  # CLI semantics: an operation is identified by its line in the deploy file
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

    host_errors: dict[str, str] = {}
    unreached: set[str] = set()

    class Errors(BaseStateCallback):
        @staticmethod
        def host_connect_error(state: Any, host: Any, error: Any) -> None:
            reason = str(error.args[0] if getattr(error, "args", None) else error)
            unreached.add(host.name)
            host_errors[host.name] = could_not_connect(
                host.name, host.data.get("ssh_hostname"), host.data.get("ssh_port"), reason
            )

    state.add_callback_handler(Errors())
    lease_answers: dict[str, LeaseAnswer] = {}
    watchdogs: list[Any] = []
    expired: dict[str, str] = {}
    try:
        state.set_stage(StateStage.Connect)
        with contextlib.suppress(PyinfraError):  # "No hosts remaining!": every host is in host_errors
            connect_all(state)
        active = list(state.inventory.get_active_hosts())
        if request.lease is not None and active:
            lease_answers = _leases(state, active, request.lease)
            refused = [h for h in active if not lease_answers[h.name].taken]
            for h in refused:
                host_errors[h.name] = "leased by another run: " + lease_answers[h.name].describe()
            if refused and request.lease.action == "acquire":  # touch nothing: give back what was taken
                taken = [h for h in active if lease_answers[h.name].taken]
                _leases(state, taken, LeaseRequest("release", request.lease.owner, request.lease.holder))
                active = []
        if request.connect_only or not active:
            return DeployRun(
                inv.name,
                request.deploy_name,
                request.dry_run,
                _host_runs(request, host_errors, unreached),
                leases=lease_answers,
            )
        stage = "dry-run" if request.dry_run else "apply"
        clock = HostClocks({h.name: request.deadlines[h.name] for h in active})
        expired = clock.expired
        state.add_callback_handler(clock.callbacks())
        watchdogs = [gevent.spawn(clock.watch, active, stage, host_errors)]
        state.set_stage(StateStage.Prepare)
        _load_for_each_host(state, exec_file, request.deploy_path, request.project_root, host_errors, clock)
        if not request.dry_run and state.inventory.get_active_hosts():
            state.set_stage(StateStage.Execute)
            with contextlib.suppress(PyinfraError):  # "No hosts remaining!": each host's error is recorded
                from pyinfra.api.operations import run_ops

                run_ops(state)
        for host in state.inventory.iter_activated_hosts():
            if host.name not in host_errors and not _connected(host):
                host_errors[host.name] = "the connection was lost: the host went away or stopped answering"
    finally:
        for w in watchdogs:
            w.kill(block=False)
        if request.lease is not None and request.lease.action == "acquire" and not request.connect_only:
            held = [
                h for h in state.inventory.iter_activated_hosts() if lease_answers.get(h.name, LeaseAnswer(False)).taken
            ]
            with contextlib.suppress(Exception):  # an unreachable host keeps its lease until it expires
                _leases(state, held, LeaseRequest("release", request.lease.owner, request.lease.holder))
        state.set_stage(StateStage.Disconnect)
        disconnect_all(state)

    def op_name(op_hash: str) -> str:
        names = state.get_op_meta(op_hash).names
        return ", ".join(sorted(names)) if names else op_hash

    try:
        op_order = state.get_op_order()
    except Exception:  # noqa: BLE001 - a host whose deploy raised half-way leaves no consistent order
        op_order = list(state.op_meta)
    hosts: list[HostRun] = []
    for name in request.hosts:
        host = py_inv.get_host(name)
        ops: list[OperationResult] = []
        for op_hash in op_order:
            data = state.ops.get(host, {}).get(op_hash)
            if data is None:
                continue
            meta = data.operation_meta
            if name in host_errors and request.dry_run:
                continue  # its dry run did not finish: no prediction is reported for it
            if request.dry_run:
                ops.append(_dry_run_result(state, host, data, op_hash, op_name, idempotent))
            elif not meta.is_complete():
                continue  # not run on this host: it failed before, or the run stopped
            else:
                error = None
                if not meta.did_succeed():
                    out = meta.stderr_lines or meta.stdout_lines
                    error = expired.get(name) or "\n".join(out[-10:]) or "command failed with no output"
                output = meta.stdout_lines[-MAX_OUTPUT_LINES:] if meta.did_change() else []
                ops.append(
                    OperationResult(op_name(op_hash), meta.did_change(), meta.did_succeed(), error, output=output)
                )
        error = host_errors.get(name)
        if error is None and host in state.failed_hosts and all(op.success for op in ops):
            error = "failed (see the log above)"
        hosts.append(HostRun(name, ops, error, reached=name not in unreached))
    interrupted = None
    if stopping:
        interrupted = f"interrupted: stopped between operations; not run: {', '.join(op_name(h) for h in stopping)}"
    return DeployRun(
        inv.name,
        request.deploy_name,
        request.dry_run,
        hosts,
        time.monotonic() - started,
        interrupted=interrupted,
        leases=lease_answers,
    )


def could_not_connect(host: str, address: object, port: object, reason: str) -> str:
    """The one line for a host that cannot be reached, whoever tried (the engine, the verifier)."""
    reason = reason.strip().splitlines()[-1] if reason.strip() else "no reason given"
    return f"could not connect to {host} ({address or host}:{port or 22}): {reason}"


def _host_runs(request: Request, errors: dict[str, str], unreached: set[str]) -> list[HostRun]:
    return [HostRun(h, [], errors.get(h), reached=h not in unreached) for h in request.hosts]


def _connected(host: Any) -> bool:  # pragma: no cover - worker side
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    return transport is not None and transport.is_active()


class HostClocks:
    """Each host's own time in the stage: while its deploy loads (facts) and while its operations run, not
    while it waits for slower hosts between operations (pyinfra runs an operation on every host, then the
    next). A host whose own time passes its deadline is expired; the others go on."""

    TICK = 0.25  # seconds between looks at the clocks

    def __init__(self, deadlines: dict[str, float]):
        self.deadlines = deadlines
        self.spent = dict.fromkeys(deadlines, 0.0)
        self.since: dict[str, float] = {}
        self.expired: dict[str, str] = {}  # host -> "timed out after N s in stage S"

    def start(self, host: str) -> None:
        self.since[host] = time.monotonic()

    def stop(self, host: str) -> None:
        started = self.since.pop(host, None)
        if started is not None:
            self.spent[host] += time.monotonic() - started

    def used(self, host: str) -> float:
        started = self.since.get(host)
        return self.spent[host] + (time.monotonic() - started if started is not None else 0.0)

    def callbacks(self) -> Any:  # pragma: no cover - worker side
        from pyinfra.api.state import BaseStateCallback

        clock = self

        class Clock(BaseStateCallback):
            @staticmethod
            def operation_host_start(state: Any, host: Any, op_hash: Any) -> None:
                clock.start(host.name)

            @staticmethod
            def operation_host_success(state: Any, host: Any, op_hash: Any, *args: Any) -> None:
                clock.stop(host.name)

            @staticmethod
            def operation_host_error(state: Any, host: Any, op_hash: Any, *args: Any) -> None:
                clock.stop(host.name)

        return Clock()

    def watch(self, hosts: list[Any], stage: str, host_errors: dict[str, str]) -> None:  # pragma: no cover
        import gevent

        left = {h.name: h for h in hosts}
        while left:
            for name, host in list(left.items()):
                if self.used(name) > self.deadlines[name]:
                    self.expired[name] = timed_out(self.deadlines[name], stage)
                    _expire(host, self.expired[name], host_errors)
                    del left[name]
            gevent.sleep(self.TICK)


def _expire(host: Any, message: str, host_errors: dict[str, str]) -> None:  # pragma: no cover - worker side
    """A host's deadline passed: record why and close its connection, so what it waits for fails at once."""
    host_errors[host.name] = message
    client = getattr(host.connector, "client", None)
    with contextlib.suppress(Exception):  # the transport, not the client: later commands fail as SSHException
        if client is not None and client.get_transport() is not None:
            client.get_transport().close()


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
            _ok, output = host.run_shell_command(command, print_output=False, print_input=False)
        except Exception as exc:  # noqa: BLE001 - the connection dropped: no lease
            return LeaseAnswer(False, previous_holder=f"{type(exc).__name__}: {exc}")
        return leases.parse(" ".join(output.stdout_lines), request.owner)

    greenlets = {h.name: state.pool.spawn(one, h) for h in hosts}
    gevent.joinall(list(greenlets.values()))
    return {name: g.value for name, g in greenlets.items()}


def _dry_run_result(
    state: Any, host: Any, data: Any, op_hash: str, op_name: Any, idempotent: dict[str, bool]
) -> OperationResult:  # pragma: no cover
    from pyinfra.context import ctx_host, ctx_state

    meta = data.operation_meta
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


def _stop_between_operations() -> list[str]:  # pragma: no cover - worker side
    """SIGUSR1 from the controller (its operator pressed Ctrl-C): finish the operation running on every host,
    run no further one. Returns the list that collects the skipped operations' hashes."""
    import importlib

    ops_module: Any = importlib.import_module("pyinfra.api.operations")
    skipped: list[str] = []
    asked = threading.Event()
    run_single = ops_module._run_single_op

    def guarded(state: Any, op_hash: str) -> None:
        if asked.is_set():
            skipped.append(op_hash)
            return
        run_single(state, op_hash)

    ops_module._run_single_op = guarded
    signal.signal(signal.SIGUSR1, lambda _s, _f: asked.set())
    return skipped


def _record_idempotency() -> dict[str, bool]:  # pragma: no cover - worker side
    """Map op hash -> the operation's `is_idempotent` (server.shell, apt.update, ... are not).

    pyinfra (3.10) does not keep the op function in state.op_meta, so the worker wraps the two
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

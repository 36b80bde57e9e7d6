"""The engine (the one package that talks to pyinfra), parent side: apply or dry-run a deploy on hosts in a worker.

Each run happens in a fresh worker process (`python -m opsrun.engine`, started one ahead by `engine.spare`,
so that its import of pyinfra overlaps the controller's own work), for three reasons measured on
pyinfra 3.10: importing pyinfra_cli monkey-patches the whole process with gevent; pyinfra keeps
process-wide caches (file hashes, compiled deploy files, known_hosts) that go stale between runs; and a
State needs a fresh Inventory every time. The parent sends the loaded inventory, the request and where to
put the result (pickle over stdin), the worker (`engine.worker`, with `engine.clocks` and `engine.dry_run`)
answers with a `DeployRun` in that file. The parent never imports pyinfra.

Deploy files are loaded with pyinfra's CLI semantics (`is_cli = True`, `load_deploy_file`), so operations
are identified by their line in the deploy file exactly as `pyinfra INVENTORY DEPLOY` does.
"""

from __future__ import annotations

import pickle
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from opsrun.engine import spare
from opsrun.errors import OpsrunError
from opsrun.hosts import sshconfig
from opsrun.hosts.leases import LeaseAnswer, LeaseRequest
from opsrun.model import secret_sources
from opsrun.model.inventory import Inventory
from opsrun.model.project import Project
from opsrun.model.results import DeployRun, HostRun
from opsrun.settings.deadlines import DEFAULTS
from opsrun.support import logs, processes, progress, waiting

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
    diff: bool = False  # a real apply also reports each file change as a diff (a dry run always does)
    forks: int | None = None  # at most this many hosts at once (None: all of them)
    verbosity: int = field(default_factory=logs.level)  # -v, -vv: how much of pyinfra's log the worker keeps
    state_dir: str = ""  # where the worker's log goes (debug.log); "" : PROJECT_ROOT/.opsrun
    # the secrets this run read (opsrun.model.secret_sources.loaded): to the worker over its stdin pipe, never to disk
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    ssh_config_file: str = ""  # the run's one SSH configuration (opsrun.hosts.sshconfig), written by _run_worker


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
        str(project.root),
        inventory,
        "",
        "",
        hosts,
        True,
        connect_timeout,
        connect_only=True,
        lease=lease,
        state_dir=str(project.state_dir),
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
    stop_now: threading.Event | None = None,
    diff: bool = False,
    forks: int | None = None,
) -> DeployRun:
    """Apply (or dry-run) deploys/DEPLOY.py on `hosts` of `inventory`, in parallel (at most `forks` at once),
    in a worker process; with `diff`, a real apply reports each file it changes as a diff, as a dry run does.

    `deadlines` (host -> seconds, default 30 min) bounds each host's stage: a host past it fails with
    "timed out after N s in stage apply" and the others finish. `stop` set (SIGINT/SIGTERM): a real apply
    stops at its next safe point, between two operations; a dry run, which changes nothing, stops at once.
    `stop_now` set (the second SIGINT; by default `stop`'s own, see waiting.Stop): the commands running are
    ended as a missed deadline ends them, each such host failing "interrupted: stopped now".
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
        diff=diff,
        forks=forks,
        state_dir=str(project.state_dir),
        secrets=secret_sources.loaded(),
    )
    backstop = connect_timeout + max(deadlines.values(), default=0) + 60
    now = stop_now or waiting.now_of(stop)
    return _run_worker(request, backstop=backstop, stage="dry-run" if dry_run else "apply", stop=stop, now=now)


def _run_worker(
    request: Request,
    *,
    backstop: float,
    stage: str,
    stop: threading.Event | None = None,
    now: threading.Event | None = None,
) -> DeployRun:
    """Run the worker; on `stop`, ask it to stop between operations (a dry run is simply ended); on `now`, to
    end the commands running now. Past the backstop (every host's deadline and a margin: the worker itself no
    longer answers) it is killed."""
    worker = spare.take()
    try:
        config = worker.folder / "ssh_config"  # pyinfra reads the same configuration as opsrun's own ssh
        config.write_text(
            sshconfig.ssh_config(request.inventory, request.hosts, worker.folder, request.connect_timeout)
        )
        request = replace(request, ssh_config_file=str(config))
        assert worker.proc.stdin is not None
        worker.proc.stdin.write(pickle.dumps((str(worker.result_path), request)))
        worker.proc.stdin.close()
        changes = not (request.dry_run or request.connect_only)
        with progress.following(worker.folder / progress.EVENTS, progress.report_line):
            ended = processes.supervise(
                worker.proc,
                backstop=backstop,
                stop=stop,
                what="the pyinfra worker",
                gentle=signal.SIGUSR1 if changes else None,  # between operations
                now=now,
                urgent=signal.SIGUSR2 if changes else None,  # the commands running now are ended
            )
        spare.replenish()  # the next run's worker imports pyinfra while this run's results are handled
        worker.log.seek(0)
        output = worker.log.read().decode(errors="replace")
        logs.worker_output(output, Path(request.state_dir or Path(request.project_root) / ".opsrun") / "debug.log")
        if ended is not None:  # killed: nothing it did is known beyond "it did not finish"
            return DeployRun(
                request.inventory.name,
                request.deploy_name,
                request.dry_run,
                [HostRun(h, [], ended) for h in request.hosts],
                interrupted=ended if any(e is not None and e.is_set() for e in (stop, now)) else None,
            )
        if not worker.result_path.exists():
            tail = "\n".join(logs.plain(output).strip().splitlines()[-10:])
            raise OpsrunError(f"the pyinfra worker exited {worker.proc.returncode} without a result:\n{tail}")
        outcome = pickle.loads(worker.result_path.read_bytes())  # noqa: S301 - our own worker wrote it
    finally:
        worker.close()
    if isinstance(outcome, OpsrunError):
        raise outcome
    assert isinstance(outcome, DeployRun)
    if not request.connect_only:
        for host in outcome.hosts:
            state = progress.UNREACHABLE if not host.reached else progress.FAILED if host.failed else progress.DONE
            progress.report(host.name, state, f"{host.changed_count} changed" if state == progress.DONE else "")
    return outcome

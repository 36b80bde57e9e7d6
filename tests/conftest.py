"""Shared helpers: the repository itself is the ops project the tests run against."""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from opsrun.lab.demo import demo_env, made_up

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("OPSRUN_KEEP_LAB"):
    # A kept lab's hosts keep the secrets they were deployed with from one session to the next (as `make demo`
    # keeps its own in .opsrun/demo.env, which this reads and adds to): a running Redis Cluster does not
    # learn a new password from an apply.
    for _name, _value in demo_env(REPO / ".opsrun" / "demo.env", environ={}).items():
        os.environ.setdefault(_name, _value)

# The demo app's secret (group_data/web.py, pm2_apps secret_env): a fresh value for each session, which
# tests/lab/test_pm2.py (test_the_secret_appears_in_no_output_file_or_report) then looks for in every output,
# file and log.
DEMO_SECRET = os.environ.setdefault("OPSRUN_DEMO_API_TOKEN", "opsrun-test-" + secrets.token_hex(12))
REDIS_SECRET = os.environ.setdefault("OPSRUN_REDIS_PASSWORD", "opsrun-redis-" + secrets.token_hex(12))
MONGO_SECRET = os.environ.setdefault("OPSRUN_MONGO_KEYFILE", secrets.token_hex(48))  # base64 characters only
# The lab's PostgreSQL pair (`opsrun lab postgres`): one password for the session, whichever test starts it
for _name, _value in made_up(os.environ).items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Any:
    """opsrun.model.secrets keeps the secrets one run registered (webhook paths, state URLs) for the life of the
    process, as a run should; a test run is many runs in one process: each test starts with none."""
    from opsrun.model import secrets as opsrun_secrets

    known, urls = set(opsrun_secrets._known), dict(opsrun_secrets._urls)
    yield
    opsrun_secrets._known.clear()
    opsrun_secrets._known.update(known)
    opsrun_secrets._urls.clear()
    opsrun_secrets._urls.update(urls)


def opsrun(*args: str, project: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as an operator would. A run document it prints (`--format json`) must
    validate against the published schema; the project and --out folder are kept for `check_written_documents`."""
    __tracebackhide__ = True
    note_documents(project, args)
    proc = subprocess.run(
        [sys.executable, "-m", "opsrun", "--project", str(project), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if "json" in args and proc.stdout.lstrip().startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):  # not JSON: the test that asked for it says so
            check_run_document(json.loads(proc.stdout), f"opsrun {' '.join(args)}")
    return proc


# ------------------------------------------------------------------- the run documents against their schema

DOCUMENT_SCHEMA = REPO / "docs" / "reference" / "run-document.schema.json"
RUN_KINDS = ("apply", "rollout", "verify", "drift", "dr-test")
WROTE_DOCUMENTS: set[Path] = set()  # the folders opsrun() may have written run documents to (results, --out)


def note_documents(project: Path, args: tuple[str, ...]) -> None:
    """Where an opsrun run with `args` on `project` may write run documents: its results, and --out."""
    WROTE_DOCUMENTS.add(project / ".opsrun" / "results")
    if "--out" in args[:-1]:
        WROTE_DOCUMENTS.add(project / args[args.index("--out") + 1])


@functools.cache
def _document_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(DOCUMENT_SCHEMA.read_text()))


def check_run_document(doc: Any, where: str) -> None:
    """Fail the test when `doc`, a run document opsrun wrote (anything with a run's `kind`), does not validate
    against the published JSON Schema (docs/reference/run-document.schema.json)."""
    __tracebackhide__ = True
    if not isinstance(doc, dict) or doc.get("kind") not in RUN_KINDS:
        return
    error = best_match(_document_validator().iter_errors(doc))
    if error is not None:
        pytest.fail(f"{where}: not a run document of {DOCUMENT_SCHEMA.name}: {error.json_path}: {error.message}")


def check_written_documents(since: float) -> None:
    """Every run document written since `since` (epoch seconds) in the folders opsrun() ran with."""
    __tracebackhide__ = True
    for folder in sorted(WROTE_DOCUMENTS):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):  # replaced, or half written by a kill
                if path.stat().st_mtime >= since:
                    check_run_document(json.loads(path.read_text()), str(path))


def git(root: Path, *args: str) -> str:
    """git in `root` with an identity of its own (the tests' ops repositories), its output stripped."""
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=opsrun tests", "-c", "user.email=tests@opsrun.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def opsrun_json(*args: str, project: Path = REPO) -> tuple[int, dict[str, Any]]:
    proc = opsrun(*args, "--format", "json", project=project)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from opsrun {' '.join(args)} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


class InBackground:
    """`_loop` (which runs until `stop` is set) in a daemon thread for the length of a `with` block."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def _loop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class CommandLineWatch(InBackground):
    """Every process's command line on this machine, read every 5 ms while the block runs: those holding
    `secret` are kept in `leaks`; `sampled` counts the command lines read."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.leaks: list[str] = []
        self.sampled = 0

    def _loop(self) -> None:
        while not self.stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue  # the process ended meanwhile
                self.sampled += 1
                if self.secret in args:
                    self.leaks.append(args)
            time.sleep(0.005)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, its console messages on stderr (the lines holding ":CONSOLE")."""
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def chromium_dom(html: Path) -> str:
    """The DOM Chromium makes of `html` once its scripts ran; a console message fails the test."""
    __tracebackhide__ = True
    proc = chromium("--dump-dom", html.as_uri())
    assert proc.returncode == 0 and ":CONSOLE" not in proc.stderr, proc.stderr
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url():
    """moto's server (the AWS APIs as boto3 sees them) on a free loopback port, in this process, empty: moto's
    state is the process's, so what another module's server made (an RDS instance) would still be there."""
    import urllib.request

    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


class PgCluster:
    """A real PostgreSQL server in a throwaway data directory, listening on loopback only, run as the
    postgres user (PostgreSQL refuses root). TCP connections need the password; Unix ones are trusted."""

    def __init__(self, data: Path, port: int):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.fail("no PostgreSQL server here (make deps installs the Debian package postgresql)", pytrace=False)
        self.bindir, self.data, self.port = Path(found[-1]).parent, data, port
        self.socket_dir = data.parent

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, text=True, env=env
        )

    @classmethod
    def create(cls, base: Path, password: str) -> PgCluster:
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")
        cluster = cls(base / "data", _free_port())
        pwfile = base / "pw"
        pwfile.write_text(password + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        cluster.run(
            str(cluster.bindir / "initdb"), "-D", str(cluster.data), "-U", "opsrun", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        pwfile.unlink()
        return cluster

    @classmethod
    def replica_of(cls, primary: PgCluster, base: Path, password: str) -> PgCluster:
        """A streaming replica: pg_basebackup -R from the primary, over TCP with the password."""
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")
        replica = cls(base / "data", _free_port())
        replica.run(
            str(replica.bindir / "pg_basebackup"), "-h", "127.0.0.1",
            "-p", str(primary.port), "-U", "opsrun", "-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast",
            env={**os.environ, "PGPASSWORD": password},  # runuser keeps it; never in argv, where ps shows it
        )  # fmt: skip
        return replica

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir}"
        log = str(self.socket_dir / "log")
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            check=False,
            capture_output=True,
        )

    def url(self, password: str, db: str = "postgres") -> str:
        return f"postgresql://opsrun:{password}@127.0.0.1:{self.port}/{db}"


@contextlib.contextmanager
def running_cluster(prefix: str = "opsrun-pg-") -> Iterator[tuple[PgCluster, str, str]]:
    """A real PostgreSQL server on loopback in a throwaway data directory, for the block: (the cluster, its
    URL, its password); stopped and removed after."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    password = secrets.token_hex(12)
    cluster = PgCluster.create(base, password)
    cluster.start()
    try:
        yield cluster, cluster.url(password), password
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session, on loopback, in a throwaway data directory."""
    with running_cluster() as (_cluster, url, _password):
        yield url


@pytest.fixture
def small_disk():
    """Mount a small tmpfs: small_disk(FOLDER, size="512k", read_only=False) -> FOLDER; all unmounted after."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str = "512k", *, read_only: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "opsrun-test", str(folder)], check=True)
        mounted.append(folder)
        return folder

    try:
        yield mount
    finally:
        for folder in reversed(mounted):
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem of `folder` to its last byte; the filler file."""
    filler = folder / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True, check=False)
    return filler


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the ops content of this repo, for tests that change group_data or deploys."""
    return copy_ops(tmp_path / "ops")


OPS_FOLDERS = ("inventories", "group_data", "deploys", "verify", "apps")


def copy_ops(dest: Path) -> Path:
    """The ops content of this repo (what an ops repository holds) copied to `dest`."""
    for folder in OPS_FOLDERS:
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler of the tests' HTTP servers: no log lines, and one call to answer."""

    def reply(self, status: int, data: bytes = b"", headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_in_thread(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on a free loopback port for the block, in a thread: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook_receiver():
    """A webhook receiver on loopback: (its URL, the JSON bodies POSTed to it, {"status": its answer,
    "script": the answers to the next requests, before `status`})."""
    got: list[dict[str, Any]] = []
    answer: dict[str, Any] = {"status": 200, "script": []}

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.reply(answer["script"].pop(0) if answer["script"] else answer["status"])

    with serve_in_thread(Handler) as url:
        yield f"{url}/hook", got, answer


@pytest.fixture
def no_ssh():
    """A TCP listener where the hosts' SSH would go: any connection to it means a host was touched."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            seen.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.fixture
def pagerduty(monkeypatch):
    """A PagerDuty Events API v2 endpoint on loopback (tests/events_api.py), and the operator's environment
    pointing at it: OPSRUN_PAGERDUTY_URL, and its routing key in OPSRUN_PAGERDUTY_ROUTING_KEY."""
    from tests.events_api import EventsAPI

    api = EventsAPI()
    with serve_in_thread(api.handler()) as url:
        monkeypatch.setenv("OPSRUN_PAGERDUTY_URL", f"{url}/v2/enqueue")
        monkeypatch.setenv("OPSRUN_PAGERDUTY_ROUTING_KEY", api.routing_key)
        yield api


# The order tests run in. A test that passes only after the tests before it proves less than it says:
# `--order shuffle` (what `make test` and CI run) shuffles the modules and the tests within each module
# (module-scoped fixtures are still made once a module); the seed is printed at the start and the end of
# the session so that a failing order can be replayed with `--order shuffle --seed N`.


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opsrun")
    group.addoption("--order", choices=("file", "reverse", "shuffle"), default="file", help="test order")
    group.addoption("--seed", type=int, default=None, help="the shuffle's seed (default: a new one)")


def _order(config: pytest.Config) -> tuple[str, int]:
    if config.getoption("seed") is None:
        config.option.seed = random.SystemRandom().randrange(10**6)
    return config.getoption("order"), config.getoption("seed")


def _order_line(config: pytest.Config) -> str:
    order, seed = _order(config)
    if order != "shuffle":
        return f"test order: {order}"
    return f"test order: shuffle, seed {seed} (replay: pytest --order shuffle --seed {seed} ...)"


def pytest_report_header(config: pytest.Config) -> str:
    return _order_line(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order, seed = _order(config)
    if order == "file":
        return
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    groups = list(modules.values())
    if order == "reverse":
        groups = [group[::-1] for group in groups[::-1]]
    else:
        rng = random.Random(seed)
        rng.shuffle(groups)
        for group in groups:
            rng.shuffle(group)
    items[:] = [item for group in groups for item in group]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    terminalreporter.write_line(_order_line(config))


# A lab test that skips proves nothing: the session fails if any did.
_skipped_lab_tests: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "/lab/" in report.nodeid.replace("\\", "/"):
        _skipped_lab_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_lab_tests:
        print(f"\nlab tests may not skip, but these did: {', '.join(_skipped_lab_tests)}")
        session.exitstatus = 1

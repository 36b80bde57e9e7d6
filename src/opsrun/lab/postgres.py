"""The lab's PostgreSQL for `opsrun dr-test`: a primary and a streaming replica on the controller's loopback,
in the lab directory (so `lab down` removes them), run as the postgres user (PostgreSQL refuses root).

The servers are the ones the DR settings point at: the URLs in OPSRUN_PG_PRIMARY_URL and
OPSRUN_PG_REPLICA_URL (group_data/all.py, dr.postgres.secret_env) give the user, password, database and
ports; their host must be 127.0.0.1. `ensure` is idempotent: it starts what is stopped, sets the role's
password to the URL's, keeps the demo tables (users, orders) and writes the night's pg_dump (custom format)
under `dumps/`, which the backup check and the restore drill read.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrun.errors import LabError
from opsrun.lab.config import LabConfig
from opsrun.support.waiting import poll_until

PRIMARY_ENV, REPLICA_ENV = "OPSRUN_PG_PRIMARY_URL", "OPSRUN_PG_REPLICA_URL"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Server:
    user: str
    password: str
    dbname: str
    port: int


def parse_url(name: str, url: str | None) -> Server:
    """The URL of environment variable `name` as a lab server; LabError naming the fix otherwise."""
    from psycopg.conninfo import conninfo_to_dict

    if not url:
        raise LabError(f"{name} is not set. Fix: export {name}=postgresql://opsrun:PASSWORD@{LOOPBACK}:PORT/opsrun")
    try:
        parts = conninfo_to_dict(url)
    except Exception as exc:  # noqa: BLE001 - psycopg raises ProgrammingError for every malformed URL
        raise LabError(f"{name} is not a PostgreSQL URL ({type(exc).__name__}).") from None
    missing = [k for k in ("user", "password", "dbname", "port") if not parts.get(k)]
    if missing:
        raise LabError(f"{name} has no {', '.join(missing)}. Fix: postgresql://USER:PASSWORD@{LOOPBACK}:PORT/DB")
    if parts.get("host") != LOOPBACK:
        raise LabError(f"{name} must point at {LOOPBACK}: the lab's PostgreSQL listens on loopback only.")
    port = str(parts["port"])
    if not port.isdigit() or not 1024 <= int(port) <= 65535:
        raise LabError(f"{name}: port {port!r} must be a number from 1024 to 65535.")
    return Server(str(parts["user"]), str(parts["password"]), str(parts["dbname"]), int(port))


def servers(environ: dict[str, str] | None = None) -> tuple[Server, Server]:
    env = dict(os.environ) if environ is None else environ
    primary, replica = parse_url(PRIMARY_ENV, env.get(PRIMARY_ENV)), parse_url(REPLICA_ENV, env.get(REPLICA_ENV))
    if (primary.user, primary.password, primary.dbname) != (replica.user, replica.password, replica.dbname):
        raise LabError(f"{PRIMARY_ENV} and {REPLICA_ENV} must differ only in the port: the replica is a copy.")
    if primary.port == replica.port:
        raise LabError(f"{PRIMARY_ENV} and {REPLICA_ENV} need two different ports.")
    return primary, replica


def root(cfg: LabConfig) -> Path:
    return cfg.lab_dir / "postgres"


def dumps_dir(cfg: LabConfig) -> Path:
    return root(cfg) / "dumps"


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise LabError("no PostgreSQL server here. Fix: apt-get install postgresql (make deps does)")
    return Path(found[-1]).parent


def _as_postgres(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    if proc.returncode != 0:
        raise LabError(f"{Path(args[0]).name} failed: {proc.stderr.strip()[-500:]}")
    return proc


def start_options(port: int, socket_dir: Path) -> str:
    return f"-c listen_addresses={LOOPBACK} -p {port} -k {socket_dir}"


def _start(data: Path, port: int) -> None:
    pid = data / "postmaster.pid"
    if pid.exists() and _running(data):
        return
    log = str(data.parent / "log")
    _as_postgres(
        str(bindir() / "pg_ctl"), "-D", str(data), "-l", log, "-w", "-t", "60",
        "-o", start_options(port, data.parent), "start",
    )  # fmt: skip


def _running(data: Path) -> bool:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", str(bindir() / "pg_ctl"), "-D", str(data), "status"],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _owned_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    shutil.chown(path, "postgres", "postgres")
    return path


def ensure(cfg: LabConfig, log: Callable[[str], None], environ: dict[str, str] | None = None) -> list[Path]:
    """Primary and replica running on loopback with the URLs' password, the demo tables, a fresh dump.
    Returns the dump files, newest last."""
    primary, replica = servers(environ)
    base = root(cfg)
    cfg.lab_dir.chmod(0o755)  # postgres must reach its folders under the lab directory
    _owned_dir(base)
    p_dir, r_dir = _owned_dir(base / "primary"), _owned_dir(base / "replica")
    if not (p_dir / "data" / "PG_VERSION").exists():
        pwfile = p_dir / "pw"
        pwfile.write_text(primary.password + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        try:
            _as_postgres(
                str(bindir() / "initdb"), "-D", str(p_dir / "data"), "-U", primary.user, "--auth-local=trust",
                "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        log(f"postgres: primary initialised in {p_dir / 'data'}")
    _start(p_dir / "data", primary.port)
    _set_password(p_dir, primary)
    _seed(p_dir, primary)
    if not (r_dir / "data" / "PG_VERSION").exists():
        basebackup(primary, r_dir / "data")
        log(f"postgres: replica made from the primary by pg_basebackup in {r_dir / 'data'}")
    _start(r_dir / "data", replica.port)
    _follow(r_dir, primary, replica)
    log(f"postgres: primary on {LOOPBACK}:{primary.port}, streaming replica on {LOOPBACK}:{replica.port}")
    dump = _owned_dir(dumps_dir(cfg)) / time.strftime("%Y%m%dT%H%M%SZ.dump", time.gmtime())
    _as_postgres(
        str(bindir() / "pg_dump"), "-Fc", "-h", str(p_dir), "-p", str(primary.port), "-U", primary.user,
        "-f", str(dump), primary.dbname,
    )  # fmt: skip
    log(f"postgres: nightly backup written: {dump}")
    return sorted(dumps_dir(cfg).glob("*.dump"))


def basebackup(primary: Server, data: Path) -> None:
    """A streaming replica of `primary` in `data` (pg_basebackup -R over TCP). The password goes in the
    environment (runuser keeps it), never in argv, where `ps` shows it to every user of the machine. A fast
    checkpoint: the default spreads the backup's checkpoint over the primary's checkpoint interval."""
    _as_postgres(
        str(bindir() / "pg_basebackup"), "-h", LOOPBACK, "-p", str(primary.port), "-U", primary.user,
        "-D", str(data), "-R", "-X", "stream", "--checkpoint=fast",
        env={**os.environ, "PGPASSWORD": primary.password},
    )  # fmt: skip


def _connect(socket_dir: Path, server: Server, dbname: str | None = None) -> Any:
    """A connection over the primary's Unix socket (trusted): no password needed to set the password."""
    import psycopg

    return psycopg.connect(
        host=str(socket_dir), port=server.port, user=server.user, dbname=dbname or server.dbname, autocommit=True
    )


def _set_password(socket_dir: Path, server: Server) -> None:
    from psycopg import sql

    with _connect(socket_dir, server, "postgres") as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(server.user), sql.Literal(server.password))
        )


def _follow(socket_dir: Path, primary: Server, replica: Server, timeout: float = 60) -> None:
    """The replica streaming from the primary: its primary_conninfo (pg_basebackup -R wrote the password of
    that day there) takes the URLs' password when `_set_password` changed it, then streaming is waited for."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with _connect(socket_dir, replica, "postgres") as conn:
        current = conninfo_to_dict(conn.execute("SHOW primary_conninfo").fetchone()[0])
        if current.get("password") != primary.password:
            conninfo = make_conninfo("", **{**current, "password": primary.password})
            conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(conninfo)))
            conn.execute("SELECT pg_reload_conf()")

    def streams() -> bool:
        with _connect(socket_dir, replica, "postgres") as conn:
            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
        return row is not None and row[0] == "streaming"

    poll_until(streams, timeout=timeout, interval=0.2, what="the lab's replica to stream from its primary")


SEED = {
    "users": "INSERT INTO users (name) SELECT 'user ' || g FROM generate_series(1, 120) g",
    "orders": "INSERT INTO orders (total) SELECT g FROM generate_series(1, 45) g",
}


def _seed(socket_dir: Path, server: Server) -> None:
    """The database of the URLs with the demo tables, filled once."""
    from psycopg import sql

    with _connect(socket_dir, server, "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (server.dbname,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(server.dbname)))
    with _connect(socket_dir, server) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, name text)")
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, total int)")
        for table, insert in SEED.items():
            if conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0] == 0:
                conn.execute(insert)


def stop(cfg: LabConfig) -> None:
    """Stop the replica, then the primary (fast shutdown); nothing to do when there is none."""
    for name in ("replica", "primary"):
        data = root(cfg) / name / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(bindir() / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                check=False,
                timeout=120,
            )

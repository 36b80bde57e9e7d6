"""PostgreSQL servers on this machine, driven the way the failover drill needs: stopped (as a crash, or cleanly),
started again with the options they last ran with, promoted, and rebuilt as a streaming replica of another
(pg_rewind, or a fresh pg_basebackup). Programs run as the data directory's owner (runuser when opsrun runs
as root); a password goes to them in PGPASSWORD, never in argv, where `ps` shows it to every user."""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrun.dr.postgres import connect


class DrillRefused(Exception):
    """The drill cannot start on these servers (nothing was touched); the message says why."""


class ServerError(Exception):
    """A PostgreSQL program failed while the drill ran; the message carries its last words."""


@dataclass(frozen=True)
class LocalServer:
    name: str  # "primary" or "replica": its role in the settings, whatever it is now
    data: Path
    url: str
    options: str  # what it last started with (postmaster.opts), for pg_ctl -o; without -D
    owner: str
    timeout: float
    bindir: Path  # its version's programs (read once: a rebuild moves PG_VERSION away for a while)

    @classmethod
    def of(cls, name: str, data: str, url: str, timeout: float) -> LocalServer:
        """The server of `url`, checked to be the one running in `data` on this machine."""
        path = Path(data)
        if not (path / "PG_VERSION").is_file():
            raise DrillRefused(f"{name}: {data} is not a PostgreSQL data directory")
        owner = pwd.getpwuid(path.stat().st_uid).pw_name
        if os.geteuid() not in (0, path.stat().st_uid):
            raise DrillRefused(f"{name}: the drill runs pg_ctl on {data}: run it as root or as {owner}")
        server = cls(name, path, url, _options(path), owner, timeout, _bindir(path))
        server.check_identity()
        return server

    def check_identity(self) -> None:
        """DrillRefused unless the server `url` reaches is the one of `data` (its data_directory, and the port
        in its postmaster.pid): the drill stops servers by their data directory."""
        from psycopg.conninfo import conninfo_to_dict

        with connect(self.url) as conn:
            shown = conn.execute("SHOW data_directory").fetchone()[0]
        if os.path.realpath(shown) != os.path.realpath(self.data):
            raise DrillRefused(f"{self.name}: its URL reaches the server of {shown}, not of {self.data}")
        pid_lines = (self.data / "postmaster.pid").read_text().splitlines()
        port = str(conninfo_to_dict(self.url).get("port") or "5432")
        if len(pid_lines) < 4 or pid_lines[3].strip() != port:
            raise DrillRefused(f"{self.name}: the server of {self.data} does not listen on the URL's port {port}")

    def program(self, name: str, *args: str, password: str | None = None) -> str:
        """Run PostgreSQL's `name` as the data directory's owner; its output, or ServerError."""
        argv = [str(self.bindir / name), *args]
        if os.geteuid() == 0 and self.owner != "root":
            argv = ["runuser", "-u", self.owner, "--", *argv]
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        if password is not None:
            env["PGPASSWORD"] = password  # runuser keeps the environment; readable only by that user and root
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ServerError(f"{name} on {self.data} did not finish within {self.timeout:g} s") from None
        if proc.returncode != 0:
            raise ServerError(f"{name} on {self.data} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
        return proc.stdout

    def stop(self, mode: str) -> None:
        """pg_ctl stop: "immediate" is a crash (no checkpoint; what was not sent is lost), "fast" a clean stop."""
        self.program("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(self.timeout)))

    def start(self) -> None:
        log = str(self.data.parent / "log")
        timeout = str(int(self.timeout))
        self.program("pg_ctl", "start", "-D", str(self.data), "-l", log, "-w", "-t", timeout, "-o", self.options)

    def rewindable(self) -> bool:
        """Whether pg_rewind can rebuild this server (it needs wal_log_hints or data checksums)."""
        with connect(self.url) as conn:
            hints = conn.execute("SHOW wal_log_hints").fetchone()[0]
            checksums = conn.execute("SHOW data_checksums").fetchone()[0]
        return "on" in (hints, checksums)

    def running(self) -> bool:
        try:
            self.program("pg_ctl", "status", "-D", str(self.data))
        except ServerError:
            return False
        return True

    def rewind_from(self, source: LocalServer) -> None:
        """pg_rewind this (stopped) server onto `source`'s timeline and make it `source`'s streaming replica.
        A CHECKPOINT on `source` first: a server just promoted has the old timeline in its control file until
        its next checkpoint, and pg_rewind would find "no rewind required" and leave a server that cannot
        follow."""
        with connect(source.url) as conn:
            conn.execute("CHECKPOINT")
        conninfo, password = _without_password(source.url)
        self.program(
            "pg_rewind", "-D", str(self.data), f"--source-server={conninfo}", "-R", "--progress", password=password
        )

    def basebackup_from(self, source: LocalServer) -> None:
        """Replace this (stopped) server's data directory by a fresh base backup of `source`, as its streaming
        replica; the old directory is put back if the backup fails, removed once it succeeded."""
        aside = self.data.with_name(f"{self.data.name}.opsrun-drill-{time.time_ns()}")
        self.data.rename(aside)
        conninfo, password = _without_password(source.url)
        try:
            self.program(
                "pg_basebackup", "-d", conninfo, "-D", str(self.data), "-R", "-X", "stream", "--checkpoint=fast",
                password=password,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(self.data, ignore_errors=True)
            aside.rename(self.data)
            raise
        (self.data / "postmaster.opts").unlink(missing_ok=True)
        shutil.rmtree(aside)


def _bindir(data: Path) -> Path:
    """Where the programs of the data directory's PostgreSQL version are (Debian's layout, or PATH)."""
    version = (data / "PG_VERSION").read_text().strip()
    found = Path(f"/usr/lib/postgresql/{version}/bin")
    if found.is_dir():
        return found
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise DrillRefused(f"no pg_ctl for PostgreSQL {version} on this machine")
    return Path(pg_ctl).parent


def _options(data: Path) -> str:
    """The options after `postgres -D DIR` in postmaster.opts (how the server was last started), as one
    shell-quoted string for pg_ctl -o."""
    opts = data / "postmaster.opts"
    if not opts.is_file():
        raise DrillRefused(f"no postmaster.opts in {data}: start the server once with pg_ctl")
    args = shlex.split(opts.read_text())[1:]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-D":
            skip = True
        elif not arg.startswith("-D"):
            kept.append(arg)
    return shlex.join(kept)


def _without_password(url: str) -> tuple[str, str | None]:
    """`url` as a libpq conninfo without its password, and the password (for PGPASSWORD)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params: dict[str, Any] = conninfo_to_dict(url)
    password = params.pop("password", None)
    return make_conninfo("", **params), None if password is None else str(password)


def in_recovery(url: str) -> bool:
    with connect(url) as conn:
        return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


def streaming(url: str) -> bool:
    """Whether the server of `url` is a replica that streams from its primary right now."""
    with connect(url) as conn:
        row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
    return row is not None and row[0] == "streaming"


def promote(server: LocalServer) -> None:
    with connect(server.url) as conn:
        done = conn.execute("SELECT pg_promote(true, %s)", (int(server.timeout),)).fetchone()[0]
    if not done:
        raise ServerError(f"pg_promote on {server.data} did not finish within {server.timeout:g} s")

"""`opsrun lab`: make, use and remove the local lab (Debian hosts under systemd-nspawn, services around them)."""

from __future__ import annotations

import json

import click

from opsrun.cli.options import FORMAT
from opsrun.cli.output import console, echo, finish
from opsrun.reports import as_text


@click.group()
def lab() -> None:
    """The local lab: real Debian hosts (systemd-nspawn) to run deploys against."""


@lab.command("up")
@click.option(
    "--hosts",
    "count",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Number of hosts (web1..webN), up to what this machine holds: the /24's 244 addresses and its memory.",
)
def lab_up(count: int) -> None:
    """Build (once) and boot the lab; running it again gives the same lab. Raises the kernel's inotify
    limits when the hosts need more (`lab down` puts them back)."""
    from opsrun.lab import Lab

    hosts = Lab().up(count, log=lambda m: echo(m, err=True))
    as_text.lab_hosts(hosts, console())
    bad = [h.name for h in hosts if h.state != "running"]
    finish(1 if bad else 0)


@lab.command("down")
@click.option("--purge", is_flag=True, help="Also remove the cached base image and package caches.")
def lab_down(purge: bool) -> None:
    """Remove every process, namespace, interface, cgroup and file the lab made."""
    from opsrun.lab import Lab

    Lab().down(log=lambda m: echo(m, err=True), purge=purge)
    echo("lab down")


@lab.command("publish")
@click.argument("version", required=False)
@click.option("--reboot", is_flag=True, help="Its postinst asks for a reboot, like a kernel update.")
def lab_publish(version: str | None, reboot: bool) -> None:
    """Publish VERSION (default: the one after the newest, 1.0 -> 1.1) of the demo package opsrun-demo in
    the lab's apt repository."""
    from opsrun.lab import Lab, aptrepo

    cfg = Lab().cfg
    deb = aptrepo.publish(cfg, version or aptrepo.next_version(cfg), reboot=reboot)
    echo(f"published {deb.name}")


@lab.command("install")
@click.argument("packages", nargs=-1, required=True)
def lab_install(packages: tuple[str, ...]) -> None:
    """apt-get install PACKAGES from the lab's repository on every lab host: what a fleet runs before opsrun
    manages it (opsrun-demo, for patching to upgrade; opsrun-mongod-standin, mongod as MongoDB's package
    installs it, played by the stand-in of tests/standins/mongod.py)."""
    from opsrun.lab import Lab

    done = Lab().install(list(packages), log=echo)
    failed = {h: p for h, p in done.items() if p.returncode != 0}
    for host, proc in done.items():
        if proc.returncode == 0:
            echo(f"{host}: installed {' '.join(packages)}")
        else:
            echo(f"{host}: apt-get failed ({proc.returncode}): {proc.stderr.strip()[-300:]}", err=True)
    finish(1 if failed else 0)


@lab.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def lab_ssh(host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND (one shell line; several words are joined with spaces) on lab host HOST as root, as
    someone logged in there would: its output, its exit code."""
    from opsrun.lab import Lab

    proc = Lab().run(host, " ".join(command))
    echo(proc.stdout, nl=False)
    echo(proc.stderr, nl=False, err=True)
    finish(proc.returncode)


@lab.command("load", context_settings={"ignore_unknown_options": True})
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Client threads.")
@click.option("--rate", type=click.FloatRange(1, 300), default=300, show_default=True, help="Requests/s at most.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def lab_load(threads: int, rate: float, command: tuple[str, ...]) -> None:
    """Run COMMAND while THREADS clients send GET / through the lab's HAProxy; then print how many
    requests went through and how many failed. Exits with COMMAND's exit code, or 1 if a request failed."""
    import subprocess

    from opsrun.lab import Lab
    from opsrun.lab.loadgen import LoadGenerator

    frontend = Lab().frontend()
    with LoadGenerator(f"http://{frontend}/", threads=threads, max_seconds=3600, max_rate=rate) as load:
        code = subprocess.run(list(command), check=False).returncode
    got = load.result
    errors = f" {dict(got.errors)}" if got.errors else ""
    echo(f"load: {got.requests} requests through HAProxy ({got.rate:.0f}/s), failed: {got.failures}{errors}")
    finish(code or (1 if got.failures else 0))


@lab.command("postgres")
def lab_postgres() -> None:
    """Start the PostgreSQL primary and streaming replica of the DR checks on this machine's loopback, at
    the URLs of OPSRUN_PG_PRIMARY_URL and OPSRUN_PG_REPLICA_URL (their password too), with the demo tables,
    and write the night's pg_dump. `lab down` removes them."""
    from opsrun.lab import Lab, postgres

    dumps = postgres.ensure(Lab().cfg, log=echo)
    echo(f"postgres: {len(dumps)} dump(s) in {dumps[-1].parent}")


@lab.command("status")
@FORMAT
def lab_status(fmt: str) -> None:
    """Each lab host's name, address and state."""
    from opsrun.lab import Lab, host_dict

    hosts = Lab().status()
    if fmt == "json":
        echo(json.dumps({"hosts": [host_dict(h) for h in hosts]}, indent=2))
    else:
        as_text.lab_hosts(hosts, console())

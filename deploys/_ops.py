"""Operations and helpers shared by the deploys. Plain pyinfra, imported as `deploys._ops`."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import re
import shlex
from collections.abc import Generator
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host, logger
from pyinfra.api import FactBase, FileUploadCommand, operation
from pyinfra.api.util import get_file_sha1
from pyinfra.facts.files import FileContents, Sha1File
from pyinfra.facts.server import Command
from pyinfra.operations.util.files import generate_color_diff

TEMPLATES = Path(__file__).parent / "templates"
STAGING = "/var/lib/opsrun/config-swap"
_jinja = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - config files, not HTML


def render(template: str, **values: Any) -> str:
    """Render deploys/templates/TEMPLATE with `values`; a missing value is an error, never an empty string."""
    return _jinja.get_template(template).render(**values)


@operation()
def config_files(files: dict[str, str], check: str, mode: str = "644") -> Generator[Any, None, None]:
    """Install configuration files together and keep them only if `check` passes with them in place.

    Files whose content differs are staged, swapped in, and `check` runs (`nginx -t`). If it fails, every
    swapped file is put back as it was and the operation fails with the check's output: a bad
    configuration is never left on disk for the next restart to find, and the running service, never
    reloaded, keeps serving the old one. Nothing is yielded when every file matches.
    """
    changed = [
        dest
        for dest, text in files.items()
        if host.get_fact(Sha1File, path=dest) != hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a checksum
    ]
    if not changed:
        host.noop(f"{len(files)} configuration files already as desired")
        return
    if host.state.config.DIFF:  # dry runs: what each file would become, as pyinfra's files.put shows it
        for dest in changed:
            current = [line + "\n" for line in host.get_fact(FileContents, path=dest) or []]
            host.log(f"Will {'modify' if current else 'create'} {dest}", logger.info)
            for line in generate_color_diff(current, files[dest].splitlines(keepends=True)):
                logger.info("  %s", line)
    # New and old copies wait in a folder of their own: inside an include dir (sites-enabled/*) they
    # would be read by the very check that is meant to judge the new files.
    q = shlex.quote
    staged = {d: q(f"{STAGING}/{d.strip('/').replace('/', '%')}") for d in changed}
    yield f"mkdir -p -m 700 {STAGING}"
    for dest in changed:
        yield FileUploadCommand(
            io.BytesIO(files[dest].encode()),
            f"{STAGING}/{dest.strip('/').replace('/', '%')}.new",
            remote_temp_filename=host.get_temp_filename(dest),
        )
    swap = [
        f"if [ -e {q(d)} ]; then cp -p {q(d)} {staged[d]}.old; else rm -f {staged[d]}.old; fi; "
        f"chmod {mode} {staged[d]}.new; mv -f {staged[d]}.new {q(d)}"
        for d in changed
    ]
    restore = [f"if [ -e {staged[d]}.old ]; then mv -f {staged[d]}.old {q(d)}; else rm -f {q(d)}; fi" for d in changed]
    yield "; ".join(
        [
            *swap,
            f"if ! {check}; then {'; '.join(restore)}; "
            f"echo 'opsrun: `{check}` failed: the previous configuration was put back' >&2; exit 1; fi",
            "rm -f " + " ".join(f"{staged[d]}.old" for d in changed),
        ]
    )


SECRET_STAGING = "/var/lib/opsrun/secret-upload"  # noqa: S105 - a folder, not a password


@operation()
def secret_file(dest: str, content: str, mode: str = "600") -> Generator[Any, None, None]:
    """A file holding secrets, uploaded when its checksum differs, never shown: unlike files.put, no diff
    of it is ever logged, in a dry run or otherwise.

    No copy of it is ever readable by another user of the host. SFTP creates a file with sftp-server's
    umask (a new file is 0644 as a rule), and pyinfra uploads straight to the destination (or, with _sudo,
    to a temp file in /tmp): so the upload goes into a folder of mode 700 of opsrun's own, with the temp
    file beside it, gets the owner of the file it replaces and its mode there, and is then moved into
    place (a rename; across file systems, a copy that keeps the mode). With _sudo, SFTP writes as the SSH
    user and pyinfra copies the upload into place with sudo: the folder then belongs to that user (sudo's
    SUDO_USER), still mode 700, so the upload never passes through /tmp."""
    if not re.fullmatch(r"[0-7]{3,4}", mode):
        raise ValueError(f"secret_file: mode {mode!r} is not an octal mode such as 600")
    want = get_file_sha1(io.BytesIO(content.encode()))
    if host.get_fact(Sha1File, path=dest) == want:
        host.noop(f"{dest} as desired (secret content, not shown)")
        return
    if host.state.config.DIFF:
        host.log(f"Will write {dest} (secret content, not shown)", logger.info)
    q = shlex.quote
    staged = f"{SECRET_STAGING}/{dest.strip('/').replace('/', '%')}"
    yield (
        f'mkdir -p -m 700 {q(SECRET_STAGING)} && chown "${{SUDO_USER:-root}}" {q(SECRET_STAGING)} && '
        f"chmod 700 {q(SECRET_STAGING)}"
    )
    yield FileUploadCommand(io.BytesIO(content.encode()), f"{staged}.new", remote_temp_filename=f"{staged}.tmp")
    yield (
        f"if [ -e {q(dest)} ]; then chown --reference={q(dest)} {q(staged + '.new')}; fi && "
        f"chmod {mode} {q(staged + '.new')} && mv -f {q(staged + '.new')} {q(dest)}"
    )


# ------------------------------------------------------------------------------------------------ patching

INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) (.*?)(?: \[[^\]]*\])?\)")


class PendingUpgrades(FactBase[list[dict[str, str | None]]]):
    """What apt would upgrade now, after refreshing its package lists (metadata only: no package changes).

    Parsed from `apt-get -s dist-upgrade` (`Inst PKG [OLD] (NEW ORIGIN [ARCH])`); held packages are kept
    back by apt and so never listed.
    """

    def command(self) -> str:
        return (
            "apt-get update -qq >/dev/null 2>&1; "
            "LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get -s -q -o Debug::NoLocking=1 dist-upgrade"
        )

    def process(self, output: list[str]) -> list[dict[str, str | None]]:
        return [
            {"package": m.group(1), "from": m.group(2), "to": m.group(3), "origin": m.group(4)}
            for line in output
            if (m := INST.match(line))
        ]


def chosen_upgrades(pending: list[dict[str, str | None]], mode: str, origins: list[str]) -> list[dict[str, str | None]]:
    if mode == "all":
        return pending
    return [p for p in pending if any(fnmatch.fnmatch(p["origin"] or "", pattern) for pattern in origins)]


APT_FLAGS = (
    "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -y -q "
    "-o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef"
)


@operation()
def upgrade_packages(mode: str = "all", origins: list[str] | None = None) -> Generator[Any, None, None]:
    """Upgrade what apt has pending: everything (`all`), or only packages from matching origins
    (`origins`, patterns such as "Debian-Security:*"). Existing configuration files are kept."""
    chosen = chosen_upgrades(host.get_fact(PendingUpgrades), mode, origins or [])
    if not chosen:
        host.noop("no pending upgrades" + ("" if mode == "all" else " from " + ", ".join(origins or [])))
        return
    if mode == "all":
        yield f"{APT_FLAGS} dist-upgrade"
    else:
        yield f"{APT_FLAGS} install --only-upgrade " + " ".join(shlex.quote(str(p["package"])) for p in chosen)


@operation()
def held_packages(packages: list[str]) -> Generator[Any, None, None]:
    """Hold exactly `packages` among those opsrun holds (apt-mark); ones dropped from the list are released.

    What opsrun held is remembered in /var/lib/opsrun/held, so holds made by hand are left alone."""
    held = set((host.get_fact(Command, "apt-mark showhold") or "").split())
    ours = set((host.get_fact(Command, "cat /var/lib/opsrun/held 2>/dev/null || true") or "").split())
    want = set(packages)
    hold, release = sorted(want - held), sorted((ours - want) & held)
    if not hold and not release and ours == want:
        host.noop(f"held: {', '.join(sorted(want)) or 'none'}")
        return
    if hold:
        yield "apt-mark hold " + " ".join(map(shlex.quote, hold))
    if release:
        yield "apt-mark unhold " + " ".join(map(shlex.quote, release))
    names = " ".join(map(shlex.quote, sorted(want)))
    yield f"mkdir -p /var/lib/opsrun && printf '%s\\n' {names} > /var/lib/opsrun/held"


# ------------------------------------------------------------------------------------------------ PM2

PM2_HOME = "/root/.pm2"  # PM2 runs as root, started at boot by pm2-root.service (`pm2 startup systemd`)

# Runs on the host. Reads PM2's state without changing it: `pm2 jlist` would spawn a daemon, so it is only
# asked when one is running. Only names, states, counters and script paths leave the host: jlist also carries
# each process's environment, secrets included.
_PM2_STATE = """
import json, os, subprocess
home = os.environ.get("PM2_HOME", "/root/.pm2")
out = {"daemon": False, "processes": [], "modules": [], "module_conf": {}}
try:
    out["module_conf"] = json.load(open(home + "/module_conf.json"))
except (OSError, ValueError):
    pass
try:
    out["modules"] = sorted(os.listdir(home + "/modules"))
except OSError:
    pass
try:
    os.kill(int(open(home + "/pm2.pid").read()), 0)
    out["daemon"] = True
except (OSError, ValueError):
    pass
if out["daemon"]:
    raw = subprocess.run(["pm2", "jlist"], capture_output=True, text=True, check=True).stdout
    for p in json.loads(raw[raw.index("["):]):
        env = p.get("pm2_env", {})
        out["processes"].append({
            "name": p["name"], "status": env.get("status"), "pid": p.get("pid"),
            "restarts": env.get("restart_time", 0), "module": bool(env.get("pmx_module")),
            "exec_mode": env.get("exec_mode"), "exec_path": env.get("pm_exec_path"),
        })
print(json.dumps(out))
"""


class Pm2State(FactBase[dict[str, Any]]):
    """PM2 on the host: is its daemon running, its processes (name, status, pid, restarts, module, the script
    it runs), the
    installed modules and their settings (module_conf.json). Nothing is started to find out."""

    def command(self) -> str:
        return f"PM2_HOME={PM2_HOME} python3 -c {shlex.quote(_PM2_STATE)}"

    def process(self, output: list[str]) -> dict[str, Any]:
        return dict(json.loads("\n".join(output)))


def online_instances(state: dict[str, Any], app: str) -> int:
    return sum(p["name"] == app and p["status"] == "online" for p in state["processes"])


def pm2_setting(value: object) -> str:
    """How `pm2 set` stores a value (module_conf.json keeps strings; booleans as true/false)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@operation()
def pm2_module(module: str, version: str, settings: dict[str, object]) -> Generator[Any, None, None]:
    """A PM2 module (pm2-logrotate) installed at `version` with exactly these settings (`pm2 set`)."""
    state = host.get_fact(Pm2State)
    conf = state["module_conf"].get(module, {})
    installed = module in state["modules"] and any(p["name"] == module for p in state["processes"])
    if not installed:
        yield f"pm2 install {shlex.quote(f'{module}@{version}')}"
    unset = {k: pm2_setting(v) for k, v in settings.items() if str(conf.get(k)) != pm2_setting(v)}
    for key, value in unset.items():
        yield f"pm2 set {shlex.quote(f'{module}:{key}')} {shlex.quote(value)}"
    if installed and not unset:
        host.noop(f"{module} installed, {len(settings)} settings as desired")


def release_of(folder: Path) -> str:
    """An app release's name: 12 hex digits of a hash of the folder's files (paths and contents), so the same
    code is the same release on every host and in every revision of the ops repo."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


class AppReleases(FactBase[dict[str, Any]]):
    """An app's releases on the host (the folders of HOME/releases) and the one HOME/current points at."""

    def command(self, home: str) -> str:
        q = shlex.quote
        return (
            f"ls -1 {q(home + '/releases')} 2>/dev/null; echo --; readlink {q(home + '/current')} 2>/dev/null || true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        cut = output.index("--") if "--" in output else len(output)
        current = "".join(output[cut + 1 :]).strip()
        return {"releases": output[:cut], "current": current.rsplit("/", 1)[-1] if current else None}


@operation()
def current_release(home: str, release: str) -> Generator[Any, None, None]:
    """HOME/current points at HOME/releases/RELEASE (switched in one rename, so a worker that starts meanwhile
    finds one release or the other); of the other releases, only the one it pointed at before is kept: a
    rollback switches back to it without copying anything."""
    seen = host.get_fact(AppReleases, home=home)
    previous = seen["current"]
    extra = [r for r in seen["releases"] if r not in (release, previous)]
    q = shlex.quote
    if previous != release:
        link, new = q(home + "/current"), q(home + "/.current.new")
        yield f"ln -sfn {q('releases/' + release)} {new} && mv -Tf {new} {link}"
    if extra:
        yield "rm -rf " + " ".join(q(f"{home}/releases/{r}") for r in extra)
    if previous == release and not extra:
        host.noop(
            f"release {release} is current"
            + (f", {len(seen['releases']) - 1} kept beside it" if seen["releases"] else "")
        )


class NpmGlobalPackages(FactBase[dict[str, str]]):
    """Globally installed npm packages and their versions. (pyinfra's NpmPackages parses the tree that npm
    draws with box characters; Debian's npm 9 draws it in ASCII without a terminal, so it never matches.)"""

    def command(self) -> str:
        return "npm ls -g --depth=0 --json 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, str]:
        deps = json.loads("\n".join(output) or "{}").get("dependencies", {})
        return {name: info.get("version", "") for name, info in deps.items()}


@operation()
def npm_global(package: str, version: str) -> Generator[Any, None, None]:
    """`package` installed globally at exactly `version` (`npm install -g`)."""
    have = host.get_fact(NpmGlobalPackages).get(package)
    if have == version:
        host.noop(f"{package} {version} installed")
        return
    yield f"npm install -g {shlex.quote(f'{package}@{version}')}"

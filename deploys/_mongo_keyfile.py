"""The replica set's keyfile changed live, member by member (imported by deploys/mongo_replicaset.py).

MongoDB's procedure for replica sets (4.2+): a keyfile may hold several keys, and two members authenticate
each other when their keyfiles share one. So a new key reaches a running set in two rolling restarts:

1. every member restarted with a keyfile holding the keys it runs with and the new one, one at a time;
2. every member restarted with the new key alone, one at a time, once every member went through 1.

Before and after each restart the set is checked healthy (every member PRIMARY or SECONDARY, one primary);
a primary steps down first. Both passes run in one pyinfra run over every member: `_serial` operations
(pyinfra finishes an operation on every host, one host after the other, before the next one starts), so a
rotation needs every member in the run's batch (`--serial 100%`) and is refused before anything changes
otherwise. The keys on disk are read as a fact and registered as secrets; no key is ever part of a command,
a message or a dry run's output.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.facts.files import FileContents

from deploys._mongo import back_in_set, healthy, members, step_down_if_primary, wait_for
from deploys._ops import secret_file
from opsrun import secrets

KEYFILE = "/etc/mongod.keyfile"
FIELD = "mongo_replicaset_auth.secret_env.keyfile"
KEY = re.compile(r"[A-Za-z0-9+/=]{6,1024}")  # what mongod accepts in a keyfile, whitespace removed


def checked(value: str, source: str) -> str:
    """The key of `value` as mongod reads it (whitespace dropped), or RuntimeError saying what mongod would
    refuse in it (never the value)."""
    key = "".join(value.split())
    if not KEY.fullmatch(key):
        raise RuntimeError(
            f"the keyfile key from {source} ({FIELD}) is not one mongod accepts: it must be 6 to 1024 "
            "characters of the base64 alphabet (A-Z a-z 0-9 + / =), whitespace aside. Nothing was changed. "
            "Fix: keep a new key there, e.g. from `openssl rand -base64 756`"
        )
    return key


def parse(text: str) -> list[str]:
    """The keys of a keyfile as mongod reads it: one YAML scalar, or a sequence of them (`- KEY`, optionally
    in quotes); the whitespace inside a key is dropped. No key: []."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    items = [ln[2:].strip() for ln in lines] if all(ln.startswith("- ") for ln in lines) else [" ".join(lines)]
    keys = []
    for item in items:
        if len(item) > 1 and item[0] == item[-1] == "'":
            item = item[1:-1].replace("''", "'")
        elif len(item) > 1 and item[0] == item[-1] == '"':
            item = item[1:-1]
        keys.append("".join(item.split()))
    return [k for k in dict.fromkeys(keys) if k]


def render(keys: list[str]) -> str:
    """A keyfile of several keys: a YAML sequence of single-quoted scalars (a quote inside doubled)."""
    return "".join("- '" + k.replace("'", "''") + "'\n" for k in keys)


@dataclass(frozen=True)
class Rotation:
    """What a running member's keyfile goes through: the keys of pass 1 (None: it already holds the new one),
    and whether pass 2 restarts it with the new key alone."""

    both: list[str] | None
    alone: bool

    @property
    def restarts(self) -> bool:
        return self.both is not None or self.alone


def plan(on_disk: list[str] | None, new: str, running: bool) -> Rotation | None:
    """A member's rotation, from the keys of its keyfile and the new key. None when there is nothing to
    rotate live: mongod does not run here or has no keyfile yet (it starts with the new key alone)."""
    if not running or not on_disk:
        return None
    if on_disk == [new]:
        return Rotation(None, alone=False)
    return Rotation(None if new in on_disk else [*on_disk, new], alone=True)


def on_disk() -> list[str] | None:
    """The keys of this host's keyfile (None: there is none), registered as secrets before anything prints."""
    lines = host.get_fact(FileContents, path=KEYFILE)
    if lines is None:
        return None
    keys = parse("\n".join(lines))
    for key in keys:
        secrets.register(key)
    return keys


def every_member_here() -> None:
    """RuntimeError unless every member of the set is in this pyinfra run (connected: in its batch, not left
    out by --limit, reached); the two passes restart each."""
    here = {h.name for h in host.state.activated_hosts}
    missing = [m["inventory_host"] for m in members() if m["inventory_host"] not in here]
    if missing:
        raise RuntimeError(
            f"mongod on {host.name} runs with a keyfile that is not the key of {FIELD} alone: a live rotation "
            f"restarts every member twice, one at a time, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not in this run's batch. Nothing was changed. Fix: apply "
            "mongo_replicaset to every member in one batch, every one reachable: --serial 100% (and no --limit)"
        )


def first_pass_done(state: Any, host: Any, names: list[str]) -> None:
    """Pass 2 restarts a member only while no member failed in this run (each took pass 1)."""
    failed = sorted(h.name for h in state.failed_hosts if h.name in names)
    if failed:
        raise RuntimeError(
            f"{', '.join(failed)} failed in this run: no other member is moved to the new key alone (every "
            "member keeps a key in common with every other). Fix: mend the failed members, apply again"
        )


def set_healthy(address: str) -> None:
    wait_for(f"the replica set to be healthy before {address} restarts", lambda: healthy(address, len(members())))


@operation()
def restart_with_keyfile(content: str, address: str, after_first_pass: bool = False) -> Generator[Any, None, None]:
    """This member restarted with `content` as its keyfile: once the set is healthy, its primary stepped down
    first, and the set healthy again after; `after_first_pass`: only when every member took pass 1."""
    if after_first_pass:
        yield FunctionCommand(first_pass_done, ([m["inventory_host"] for m in members()],), {})
    yield FunctionCommand(set_healthy, (address,), {})
    yield FunctionCommand(step_down_if_primary, (address,), {})
    yield from secret_file._inner(KEYFILE, content, mode="400")
    yield "systemctl restart mongod"
    yield FunctionCommand(back_in_set, (address,), {})

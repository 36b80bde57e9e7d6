"""Leases on the hosts: what keeps two controllers off one host when they share no state store.

A real apply takes a lease on every host it will touch before it changes any: a one-line file
/var/lib/opsrun/lease, written under `flock`, that says until when (epoch seconds), which run of which
state store holds it (the *owner*, `STORE_ID:RUN_ID`) and who (user@machine). The run renews it while it
lives and removes it at the end. Another controller finds a live lease and refuses that host (exit 2,
the holder named). A lease past its expiry (its controller died) is taken over, and so is one of a run of
the same state store that is not running any more (killed, or crashed before it could give it back): both
are reported.

The shell is built here, every value quoted; the engine's worker runs it over the host's open connection.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from typing import Literal

LEASE_DIR = "/var/lib/opsrun"
TOKEN = re.compile(r"[^A-Za-z0-9@._:/+-]")

Action = Literal["acquire", "release"]


@dataclass(frozen=True)
class LeaseRequest:
    action: Action
    owner: str  # STORE_ID:RUN_ID
    holder: str  # user@machine, for the message another controller shows
    ttl: int = 300
    store: str = ""  # this state store's id: its runs' leases are ours to judge
    live: tuple[str, ...] = ()  # owners of this store's runs that are still running (their leases hold)


@dataclass(frozen=True)
class LeaseAnswer:
    taken: bool
    previous_owner: str | None = None  # another run's lease that was there (taken over, or refusing us)
    previous_holder: str | None = None
    previous_expiry: int | None = None
    now: int | None = None

    @property
    def took_over(self) -> bool:
        return self.taken and self.previous_owner is not None

    def describe(self) -> str:
        """What the other lease was: for a refusal or a takeover."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.previous_expiry or 0))
        until = f"until {when}" if self.previous_expiry else "with no expiry"
        return f"{self.previous_holder} (run {self.previous_owner}), {until}"


def token(text: str) -> str:
    """A value as one word of the lease line: no spaces, no shell or line syntax."""
    return TOKEN.sub("_", text)[:200] or "-"


def script(req: LeaseRequest, directory: str = LEASE_DIR) -> str:
    """The shell that takes, renews or releases the lease in `directory`; prints one answer line (`parse`)."""
    me, holder = shlex.quote(token(req.owner)), shlex.quote(token(req.holder))
    live = shlex.quote(" " + " ".join(token(o) for o in req.live) + " ")
    ours = f"{shlex.quote(token(req.store))}:*" if req.store else "''"  # the * unquoted: a pattern
    head = (
        f"d={shlex.quote(directory)}; "
        'mkdir -p "$d" && exec 9>"$d/lease.lock" && flock -w 10 9 || { echo error lock; exit 0; }; '
        "now=$(date +%s); exp=0; owner=-; holder=-; "
        '[ -s "$d/lease" ] && read -r exp owner holder < "$d/lease"; case "$exp" in *[!0-9]*|"") exp=0;; esac; '
    )
    if req.action == "release":
        return head + f'[ "$owner" = {me} ] && rm -f "$d/lease"; echo released'
    return head + (
        f'if [ "$owner" != - ] && [ "$owner" != {me} ] && [ "$exp" -gt "$now" ]; then '
        f'case "$owner" in {ours}) case {live} in *" $owner "*) held=1;; *) held=;; esac;; *) held=1;; esac; '
        f'[ -n "$held" ] && {{ echo held $exp $owner $holder; exit 0; }}; fi; '
        f'echo "$((now + {int(req.ttl)})) "{me}" "{holder} > "$d/lease.new" && mv "$d/lease.new" "$d/lease" && '
        "echo taken $exp $owner $holder $now"
    )


def parse(output: str, owner: str) -> LeaseAnswer:
    """`taken EXP OWNER HOLDER NOW` | `held EXP OWNER HOLDER` | `released` | anything else: not taken."""
    words = output.split()
    if not words or words[0] not in ("taken", "held", "released"):
        return LeaseAnswer(False, previous_holder=output.strip()[:200] or "no answer")
    if words[0] == "released":
        return LeaseAnswer(True)
    expiry = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    other = words[2] if len(words) > 2 and words[2] not in ("-", token(owner)) else None
    holder = words[3] if len(words) > 3 else None
    now = int(words[4]) if len(words) > 4 and words[4].isdigit() else None
    if words[0] == "held":
        return LeaseAnswer(False, other or "?", holder, expiry)
    return LeaseAnswer(True, other, holder if other else None, expiry if other else None, now)

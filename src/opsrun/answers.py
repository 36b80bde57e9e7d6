"""The servers' answers as the verify suites see them, checked before they are read: a refusal (a wrong
password, a node that is loading, a replica set not initiated) fails the test with what the server said,
named by host and port, never with a KeyError or an IndexError from reading a refusal as an answer.

Every check raises `Refused` (an AssertionError, so pytest reports it as a failed test with this message
alone). Pure functions over recorded text and documents: tests/unit/test_answers.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

AUTH_REFUSED = re.compile(r"WRONGPASS|NOAUTH|AUTH failed|invalid password|Authentication required", re.IGNORECASE)
REDIS_ERROR = re.compile(
    r"^(\(error\) )?(ERR|WRONGTYPE|LOADING|CLUSTERDOWN|MASTERDOWN|READONLY|BUSY|NOPERM|MOVED|ASK|TRYAGAIN)\b"
    r"|^Could not connect|^Error: "
)
MONGO_AUTH_CODES = {13, 18}  # Unauthorized, AuthenticationFailed


class Refused(AssertionError):
    """The server did not give the answer that was asked for; the message says what it said instead."""


def secret_source(auth: Any, setting: str) -> str:
    """Where a deploy's secret comes from, as a message names it: `OPSRUN_REDIS_PASSWORD`,
    `secretsmanager:prod/redis key password`, `ssm:/prod/redis` (from group_data's `*_auth`, never a value)."""
    ref = ((auth or {}).get("secret_env") or {}).get(setting) if isinstance(auth, Mapping) else None
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Mapping):
        if "env" in ref:
            return str(ref["env"])
        if "secretsmanager" in ref:
            return f"secretsmanager:{ref['secretsmanager']}" + (f" key {ref['key']}" if ref.get("key") else "")
        if "ssm" in ref:
            return f"ssm:{ref['ssm']}"
    return "the cluster's auth file (no secret_env set)"


def redis_reply(stdout: str, stderr: str, rc: int, *, where: str, source: str) -> str:
    """redis-cli's answer, once it is known to be one: Refused for a refused login (AUTH failed, WRONGPASS,
    NOAUTH), an error reply, no answer, or a failed exit."""
    said = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    if any(AUTH_REFUSED.search(line) for line in said):
        raise Refused(f"authentication failed on {where} (the password in {source} is not the cluster's)")
    errors = [line for line in said if REDIS_ERROR.search(line)]
    if errors or rc != 0:
        raise Refused(f"{where} answered an error: {(errors or said or [f'exit {rc}'])[0]}")
    if not stdout.strip():
        raise Refused(f"{where} gave an empty answer")
    return stdout


def cluster_info(text: str, where: str) -> dict[str, str]:
    """CLUSTER INFO as fields; Refused when it is not CLUSTER INFO (no cluster_state in it)."""
    fields = dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line)
    if "cluster_state" not in fields:
        raise Refused(f"{where} gave no cluster_state to CLUSTER INFO: {_first(text)}")
    return fields


def cluster_nodes(text: str, where: str) -> list[dict[str, Any]]:
    """CLUSTER NODES lines as {id, flags, master, link}; Refused for a line that is not one."""
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 8:
            raise Refused(f"{where} gave a line that is no CLUSTER NODES entry: {line.strip()[:120]}")
        nodes.append({"id": parts[0], "flags": set(parts[2].split(",")), "master": parts[3], "link": parts[7]})
    if not nodes:
        raise Refused(f"{where} listed no node to CLUSTER NODES")
    return nodes


def config_value(text: str, key: str, where: str) -> str:
    """The value of CONFIG GET KEY; Refused when the answer is not the pair [key, value]."""
    lines = [line.strip() for line in text.splitlines()]
    if len(lines) != 2 or lines[0] != key:
        raise Refused(f"{where} gave no value for CONFIG GET {key}: {_first(text)}")
    return lines[1]


def mongo_refusal(exc: Exception, command: str, where: str, source: str) -> Refused:
    """What a pymongo error on `command` means, as a test failure: a refused login names the keyfile's
    source; any other error is said as the server said it."""
    code = getattr(exc, "code", None)
    if code in MONGO_AUTH_CODES:
        return Refused(f"authentication failed on {where} for {command} (the members' key comes from {source})")
    return Refused(f"{where} refused {command}: {exc}")


def replset_status(status: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """replSetGetStatus once it is one: Refused for an answer without `set` and `members`."""
    if not status.get("ok", 1) or "members" not in status or "set" not in status:
        raise Refused(f"{where} gave no replica set status: {dict(status).get('errmsg', 'no members in it')}")
    return status


def primary_of(status: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """The PRIMARY member of a replica set status; Refused when there is none."""
    for member in status["members"]:
        if member.get("stateStr") == "PRIMARY":
            return dict(member)
    states = {m.get("name"): m.get("stateStr") for m in status["members"]}
    raise Refused(f"{where} sees no PRIMARY in the set: {states}")


def member_config(config: Mapping[str, Any], me: str) -> Mapping[str, Any]:
    """This member's entry of replSetGetConfig; Refused when it is not there exactly once."""
    found = [m for m in config.get("members", []) if m.get("host") == me]
    if len(found) != 1:
        hosts = [m.get("host") for m in config.get("members", [])]
        raise Refused(f"{me} is {'not' if not found else 'more than once'} in the set's config (members: {hosts})")
    return dict(found[0])


def _first(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:120] if lines else "(empty)"

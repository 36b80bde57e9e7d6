"""Privilege escalation in the worker: pyinfra's sudo arguments from host data, for the commands the worker
runs outside operations (the sudo check, the lease), and the check itself (worker side: imports pyinfra)."""

from __future__ import annotations

import contextlib
from typing import Any

from opsrun.hosts import sudo


def escalated(state: Any, active: list[Any], errors: dict[str, str]) -> list[Any]:  # pragma: no cover - worker side
    """The hosts that can go on: a host whose data turns sudo on runs `true` under it first, and one where sudo
    asks for a password that was not given, or refuses, fails here, before any lease, drain or operation."""
    import gevent
    from pyinfra.api.command import StringCommand
    from pyinfra.api.exceptions import PyinfraError

    def one(host: Any) -> str | None:
        try:
            ok, output = host.run_shell_command(
                StringCommand("true"), print_output=False, print_input=False, **sudo_arguments(host.data)
            )
        except Exception as exc:  # noqa: BLE001 - the connection dropped, or sudo asked (hooks.no_prompts)
            return sudo.explain(host.name, str(exc)) or f"{host.name}: sudo check failed: {exc}"
        said = "\n".join(line.line for line in output.combined_lines)
        return None if ok else sudo.explain(host.name, said) or f"{host.name}: sudo failed: {said.strip()}"

    asked = {h: state.pool.spawn(one, h) for h in active if h.data.get("_sudo")}
    gevent.joinall(list(asked.values()))
    failed = {h for h, g in asked.items() if g.value is not None}
    for host in failed:
        errors[host.name] = asked[host].value
    with contextlib.suppress(PyinfraError):  # "No hosts remaining!"
        state.fail_hosts(failed)
    return [h for h in active if h not in failed]


def sudo_arguments(data: Any) -> dict[str, Any]:
    """pyinfra's escalation arguments as the host's data gives them (for commands outside operations)."""
    return {k: data.get(k) for k in sudo.KEYS if k != "_use_sudo_password" and data.get(k) is not None}

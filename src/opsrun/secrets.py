"""Secrets named in group_data, never written there.

A `secret_env` mapping anywhere in a deploy's settings (the `DEPLOY_*` keys of a host's data), such as
{"API_TOKEN": "OPSRUN_DEMO_API_TOKEN"}, says: the app's variable API_TOKEN takes the value of the
operator's environment variable OPSRUN_DEMO_API_TOKEN. Before any host is touched, `require` checks
that every such variable is set, and refuses values that look like secrets written in plain text next
to them (an `env` entry named *PASSWORD, *TOKEN, *SECRET, *_KEY).

The values it found are kept for `redact`, which every output of opsrun passes through (JSON documents,
text output, the state store): a secret that reaches a command line or an error message on its way is
shown as `***`, never as itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from opsrun.errors import ConfigError
from opsrun.inventory import Inventory

MASK = "***"
SECRETISH = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY|APIKEY|PRIVATE)$", re.IGNORECASE)
ENV_SECRETISH = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)  # names of variables to mask
_known: set[str] = set()


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(path, kind, mapping) for every `secret_env` and `env` mapping inside `value`."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            here = f"{path}.{key}"
            if key in ("secret_env", "env") and isinstance(inner, Mapping):
                yield here, str(key), inner
            else:
                yield from _walk(inner, here)
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")


def require(
    inv: Inventory, hosts: list[str], deploys: list[str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every secret that the hosts' settings for `deploys` (the `DEPLOY_*` keys) name, by environment
    variable name; ConfigError if one is missing or a secret sits in group_data in plain text. The values
    are remembered for `redact`."""
    environ = os.environ if environ is None else environ
    prefixes = tuple(f"{d}_" for d in deploys)
    found: dict[str, str] = {}
    for host in hosts:
        for key, value in inv.hosts[host].data.items():
            if key not in deploys and not key.startswith(prefixes):
                continue
            for path, kind, mapping in _walk(value, key):
                where = inv.where(host, key)
                if kind == "env":
                    for var, literal in mapping.items():
                        if SECRETISH.search(str(var)) and literal not in (None, ""):
                            raise ConfigError(
                                where,
                                f"{var} looks like a secret, written here in plain text.",
                                field=f"{path}.{var}",
                                fix=f'move it to secret_env: {{"{var}": "NAME"}}, NAME being an environment '
                                "variable that holds the value where opsrun runs",
                            )
                    continue
                for var, name in mapping.items():
                    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                        raise ConfigError(
                            where,
                            f"{var} must name an environment variable, not hold a value.",
                            field=f"{path}.{var}",
                            fix=f'write {{"{var}": "NAME"}} and export NAME where opsrun runs',
                        )
                    if not environ.get(name):
                        raise ConfigError(
                            where,
                            f"the environment variable {name} (for {var}) is not set; nothing was touched.",
                            field=f"{path}.{var}",
                            fix=f"export {name}=... in the environment that runs opsrun "
                            "(secret values are never read from group_data)",
                        )
                    found[name] = environ[name]
    _known.update(v for v in found.values() if len(v) >= 4)
    return found


def redact(text: str) -> str:
    """`text` with every secret value that `require` found, and the value of every environment variable
    whose name looks secret (AWS_SECRET_ACCESS_KEY, PGPASSWORD, ...), replaced by ***."""
    env = {v for k, v in os.environ.items() if ENV_SECRETISH.search(k) and len(v) >= 4}
    for value in sorted(_known | env, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text

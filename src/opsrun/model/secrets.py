"""Secrets named in group_data, never written there.

A `secret_env` mapping anywhere in a deploy's settings (the `DEPLOY_*` keys of a host's data), such as
{"API_TOKEN": "OPSRUN_DEMO_API_TOKEN"}, says: the app's variable API_TOKEN takes the value of the
operator's environment variable OPSRUN_DEMO_API_TOKEN (or of an AWS secret: {"secretsmanager": ID, "key":
K}, {"ssm": NAME}; see opsrun.model.secret_sources). Before any host is touched, `require` reads every such
value, and refuses values that look like secrets written in plain text next to them
(`check_plain_text`): an `env` entry whose name holds PASS, PWD, SECRET, TOKEN, KEY, AUTH, CRED,
PRIVATE, SALT, SIGNATURE, COOKIE or DSN (DB_PASS, API_TOKENS, AUTH, STRIPE_KEYS), unless the same settings
list it in `not_secret` (`"not_secret": ["AUTH_MODE"]`: the value is plain configuration), and any `env`
value that is a URL with a password in it, whatever its name.

The values it found are kept for `redact`, which every output of opsrun passes through (JSON documents,
text output, the state store): a secret that reaches a command line or an error message on its way is
shown as `***`, never as itself.

URLs are secrets in part, wherever they appear (`redact`): the password of their userinfo (or the whole
userinfo when it is one word: a token), every query value (`?password=`, `?sig=`), the fragment, and the
path of a chat webhook (Slack, Discord, Teams, Mattermost, Telegram, any path with a hook segment: the
path is the key). A URL that opsrun is given as a secret (`--notify webhook:URL`, `--state URL`) is
registered with `register_url`: it is then shown as `safe_url` gives it, and its path is masked even
where it appears alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from opsrun.errors import ConfigError
from opsrun.model import secret_sources
from opsrun.model.inventory import Inventory
from opsrun.settings.values import SECRETISH

MASK = "***"
URL_WITH_PASSWORD = re.compile(r"://[^/?#\s@:]*:[^/?#\s@]+@")
ENV_SECRETISH = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)  # names of variables to mask
_known: set[str] = set()
_urls: dict[str, str] = {}  # a URL registered as secret -> how it is shown

# scheme://netloc/path?query#fragment, up to a space, a quote, a backslash (JSON escapes) or <>`
URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/?#\s\"'<>\\`]*)(?P<path>/[^?#\s\"'<>\\`]*)?"
    r"(?:\?(?P<query>[^#\s\"'<>\\`]*))?(?:#(?P<fragment>[^\s\"'<>\\`]*))?"
)
WEBHOOK_HOSTS = (  # chat services whose incoming-webhook URLs carry their key in the path
    "hooks.slack.com",
    "discord.com",
    "discordapp.com",
    "webhook.office.com",
    "outlook.office.com",
    "logic.azure.com",
    "chat.googleapis.com",
    "hooks.zapier.com",
    "api.telegram.org",
)
HOOK_SEGMENT = re.compile(r"^(api)?(web)?hooks?(b2)?$|webhook", re.IGNORECASE)
PLAIN_SEGMENT = re.compile(r"^[A-Za-z]{1,16}$")
QUERY_SECRETISH = re.compile(r"pass|secret|token|key|sig|auth|credential|code", re.IGNORECASE)


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]:
    """(path, kind, mapping, the mapping holding it) for every `secret_env` and `env` mapping in `value`."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            here = f"{path}.{key}"
            if key in ("secret_env", "env") and isinstance(inner, Mapping):
                yield here, str(key), inner, value
            else:
                yield from _walk(inner, here)
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")


def check_plain_text(key: str, value: Any, where: str) -> None:
    """ConfigError if the setting `key` (`pm2_apps`) holds a secret in plain text: an `env` entry with a
    secret-looking name that its settings do not list in `not_secret`, or an `env` value that is a URL
    with a password. `where` is the file that set it."""
    for path, kind, mapping, holder in _walk(value, key):
        if kind != "env":
            continue
        plain = holder.get("not_secret") or ()
        for var, literal in mapping.items():
            if literal in (None, ""):
                continue
            if URL_WITH_PASSWORD.search(str(literal)):
                raise ConfigError(
                    where,
                    f"{var} holds a URL with a password, written here in plain text.",
                    field=f"{path}.{var}",
                    fix=f'move it to secret_env: {{"{var}": "NAME"}}, NAME being an environment variable that '
                    "holds the whole URL where opsrun runs",
                )
            if SECRETISH.search(str(var)) and var not in plain:
                raise ConfigError(
                    where,
                    f"{var} looks like a secret, written here in plain text.",
                    field=f"{path}.{var}",
                    fix=f'move it to secret_env: {{"{var}": "NAME"}}, NAME being an environment variable that '
                    f'holds the value where opsrun runs; or, if it is plain configuration, say so: "not_secret": '
                    f'["{var}"] beside this env',
                )


def require(
    inv: Inventory, hosts: list[str], deploys: list[str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every secret that the hosts' settings for `deploys` (the `DEPLOY_*` keys) refer to, read now from
    where it is kept (opsrun.model.secret_sources: the environment, Secrets Manager, SSM), by reference label;
    ConfigError naming the reference if one cannot be read, or if a secret sits in group_data in plain text.
    The values are remembered for `redact` before this returns."""
    prefixes = tuple(f"{d}_" for d in deploys)
    found: dict[str, str] = {}
    for host in hosts:
        for key, value in inv.hosts[host].data.items():
            if key not in deploys and not key.startswith(prefixes):
                continue
            where = inv.where(host, key)
            check_plain_text(key, value, where)
            for path, kind, mapping, _holder in _walk(value, key):
                if kind == "env":
                    continue
                for var, raw in mapping.items():
                    field = f"{path}.{var}"
                    ref = secret_sources.parse(raw, where, field)
                    found[secret_sources.label(ref)] = secret_sources.read(raw, where, field, environ)
    return found


def register(value: str) -> None:
    """Remember a secret value that opsrun read from the environment itself (a PagerDuty routing key):
    `redact` masks it from now on, whatever the name of its variable."""
    if len(value) >= 4:
        _known.add(value)


def redact(text: str) -> str:
    """`text` with every secret value that `require` found, the value of every environment variable whose
    name looks secret (AWS_SECRET_ACCESS_KEY, PGPASSWORD, ...), and the secret parts of every URL (see the
    module's docstring) replaced by ***."""
    return _redact(text, _values_to_mask())


def _values_to_mask() -> list[str]:
    """The secret values known now, longest first (one inside another is masked whole)."""
    env = {v for k, v in os.environ.items() if ENV_SECRETISH.search(k) and len(v) >= 4}
    return sorted(_known | env, key=len, reverse=True)


def _redact(text: str, values: list[str]) -> str:
    for url in sorted(_urls, key=len, reverse=True):
        if url in text:
            text = text.replace(url, _urls[url])
    if "://" in text:  # URLs first: a known value replaced inside one (a webhook path "/hook") would hide it
        text = URL.sub(_mask_url, text)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_values(document: Any) -> Any:
    """A JSON document (dicts, lists, strings, numbers) with every string in it, keys too, as `redact` gives
    it: the secrets are masked in the values themselves, before any JSON text is written, so that a quote, a
    backslash or a non-ASCII letter that JSON would escape cannot hide one. A number that is a secret's
    digits becomes ***."""
    values = _values_to_mask()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _redact(value, values)
        if isinstance(value, Mapping):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, int | float) and not isinstance(value, bool) and _redact(str(value), values) != str(value):
            return MASK
        return value

    return walk(document)


def _is_webhook(host: str, path: str) -> bool:
    host = host.lower()
    if any(host == h or host.endswith("." + h) for h in WEBHOOK_HOSTS):
        return True
    return any(HOOK_SEGMENT.search(segment) for segment in path.split("/") if segment)


def _mask_url(match: re.Match[str]) -> str:
    """One URL with its userinfo password (or one-word userinfo), query values, fragment and webhook path
    masked; a URL without any of them is returned as it was."""
    netloc, path = match["netloc"], match["path"] or ""
    query, fragment = match["query"], match["fragment"]
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon and user else f"{MASK}@{host}"
    if path and _is_webhook(host.rpartition(":")[0] if ":" in host and "]" not in host else host, path):
        segments = [s for s in path.split("/") if s]
        keep = segments[0] if len(segments) > 1 and PLAIN_SEGMENT.match(segments[0]) else ""
        path = f"/{keep}/{MASK}" if keep else f"/{MASK}"
    out = f"{match['scheme']}://{netloc}{path}"
    if query is not None:
        pairs = [p for p in re.split(r"[&;]", query) if p]
        out += "?" + "&".join(f"{p.partition('=')[0]}={MASK}" if "=" in p else MASK for p in pairs)
    if fragment is not None:
        out += f"#{MASK}" if fragment else "#"
    return out


def safe_url(url: str) -> str:
    """How a URL given as a secret is shown: scheme, host and port, the first path segment when it is a
    plain word, and `/...` for the rest (query, fragment, deeper path); never a user or a password."""
    match = URL.fullmatch(url.strip())
    if match is None:
        return "(not a URL)" if "://" not in url else "(a malformed URL)"
    host = match["netloc"].rpartition("@")[2]
    if host.count("[") != host.count("]") or any(c in host for c in "{} "):
        return "(a malformed URL)"
    segments = [s for s in (match["path"] or "").split("/") if s]
    first = f"/{segments[0]}" if segments and PLAIN_SEGMENT.match(segments[0]) else ""
    more = "/..." if len(segments) > (1 if first else 0) or match["query"] or match["fragment"] else ""
    return f"{match['scheme']}://{host}{first}{more}"


def register_url(url: str, *, path_is_secret: bool = False) -> str:
    """Remember `url` as a secret (a webhook target: `path_is_secret`; a state store URL); it is shown as
    `safe_url(url)` from now on, and its password, secret-looking query values (password=, token=, sig=)
    and (`path_is_secret`) path are masked wherever they appear alone. Returns the safe form."""
    shown = safe_url(url)
    match = URL.fullmatch(url.strip())
    if match is not None:
        userinfo, at, host = match["netloc"].rpartition("@")
        parts = [userinfo.partition(":")[2] or userinfo] if at else []
        pairs = [p.partition("=") for p in re.split(r"[&;]", match["query"] or "")]
        parts += [value for key, _, value in pairs if QUERY_SECRETISH.search(key)]  # not sslmode=require
        if path_is_secret and len(match["path"] or "") > 1:
            shown = f"{match['scheme']}://{host}/{MASK}"
            parts.append(match["path"])
        _known.update(p for p in parts if len(p) >= 4)
    _urls[url] = shown
    return shown

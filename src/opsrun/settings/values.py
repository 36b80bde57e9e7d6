"""The value types every settings schema shares: names, paths, hosts, ports, one-line text, and the
strict base model (no "2" for 2, no True for a port; a misspelt setting is an error)."""

from __future__ import annotations

import re
import string
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# ------------------------------------------------------------------------------------- shared value types

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # app, backend, server, upstream, replica set, unit names
PATH_RE = r"^/[A-Za-z0-9._/@%+=:,~-]*$"  # absolute paths: no spaces, quotes, $, ;, newlines
GLOB_RE = r"^/[A-Za-z0-9._/@%+=:,~*?\[\]-]*$"
HOSTNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$|^[0-9A-Fa-f:.]+$"  # DNS name, IPv4 or IPv6 address
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
LINE_RE = r"^[^\x00-\x1f\x7f]*$"  # one line of text: no newline, carriage return or other control character
SETTING_WORD_RE = r"^[A-Za-z0-9 ._:/,+*-]*$"
#: a variable or field name that holds (or names) a secret: its value is never shown, and refused in plain text
SECRETISH = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|AUTH|CRED|PRIVATE|SALT|SIGNATURE|COOKIE|DSN", re.IGNORECASE)

Name = Annotated[str, StringConstraints(pattern=NAME_RE)]
AbsPath = Annotated[str, StringConstraints(pattern=PATH_RE)]
AbsGlob = Annotated[str, StringConstraints(pattern=GLOB_RE)]
Hostname = Annotated[str, StringConstraints(pattern=HOSTNAME_RE)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_RE)]
Line = Annotated[str, StringConstraints(pattern=LINE_RE)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]
Size = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?%$")] | Annotated[int, Field(ge=0)]

FIX_PORT = "a port number from 1 to 65535, written as a number (6379, not '6379')"
FIX_NAME = "a plain name: letters, digits, '.', '_' and '-' (no spaces, quotes or ';')"
FIX_PATH = "an absolute path of letters, digits and ./_-@%+=:,~ (no spaces, quotes, '$' or ';')"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, regex_engine="python-re")


def template_keys(template: str) -> list[str]:
    """The {keys} a str.format template uses; ValueError for a malformed one or an index/attribute use."""
    keys = []
    for _text, key, spec, conversion in string.Formatter().parse(template):
        if key is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or spec or conversion:
            raise ValueError(f"{{{key}}} is not a plain {{name}} placeholder")
        keys.append(key)
    return keys


# ------------------------------------------------------------------------------------- secret references

SECRET_ID_RE = r"^[A-Za-z0-9/_+=.@:-]{1,2048}$"  # noqa: S105 - a Secrets Manager name or ARN
SSM_NAME_RE = r"^[A-Za-z0-9/_.:-]{1,2048}$"  # an SSM parameter name (/prod/redis/password) or ARN
FIX_REFERENCE = (
    '"ENV_NAME", {"env": "ENV_NAME"}, {"secretsmanager": "NAME_OR_ARN", "key": "JSON_KEY"} (key optional) '
    'or {"ssm": "/PARAMETER/NAME"} (a SecureString)'
)


class EnvSecret(Strict):
    """The operator's environment variable ENV_NAME holds the value."""

    env: EnvName


class SecretsManagerSecret(Strict):
    """An AWS Secrets Manager secret (name or ARN): its string, or with `key` the value of that key of its JSON."""

    secretsmanager: Annotated[str, StringConstraints(pattern=SECRET_ID_RE)]
    key: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=LINE_RE)] | None = None


class SsmSecret(Strict):
    """An AWS SSM Parameter Store SecureString parameter, read decrypted."""

    ssm: Annotated[str, StringConstraints(pattern=SSM_NAME_RE)]


#: where a secret_env entry's value is read (opsrun.model.secret_sources): a bare name is {"env": NAME}
SecretRef = EnvName | EnvSecret | SecretsManagerSecret | SsmSecret

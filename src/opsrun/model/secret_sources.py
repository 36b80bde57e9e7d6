"""Where a `secret_env` entry's value is read: the operator's environment, AWS Secrets Manager or SSM
Parameter Store (opsrun.settings.values.SecretRef).

    "OPSRUN_REDIS_PASSWORD"                                  the environment variable (same as {"env": ...})
    {"secretsmanager": "prod/redis", "key": "password"}      a secret's string, or one key of its JSON
    {"ssm": "/prod/redis/password"}                          a SecureString parameter, decrypted

`read` reads each reference once per process and keeps the value in memory only (`loaded`, `preload`:
the controller hands what it read to its pyinfra worker over a pipe, so the worker never asks AWS again;
a plain `pyinfra` run reads them itself, the same way). Every value is registered for redaction before
it is returned. AWS is reached the usual way (environment, ~/.aws, instance role, AWS_ENDPOINT_URL) with
botocore's standard retries. Anything that keeps a value from being read is a ConfigError (exit 2) that
names the reference and never the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from opsrun.errors import ConfigError
from opsrun.settings.values import FIX_REFERENCE, EnvSecret, SecretRef, SecretsManagerSecret, SsmSecret

_values: dict[str, str] = {}  # reference label -> value, read once per process
_ADAPTER: TypeAdapter[Any] = TypeAdapter(SecretRef)
MISSING = {"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"}


def parse(raw: Any, where: str, field: str) -> EnvSecret | SecretsManagerSecret | SsmSecret:
    """A `secret_env` entry as its schema reads it (a bare name is {"env": NAME}); ConfigError otherwise."""
    try:
        ref = _ADAPTER.validate_python(raw, strict=True)
    except ValidationError:
        raise ConfigError(
            where,
            "this must say where the secret is kept, not hold a value.",
            field=field,
            fix=f"write one of {FIX_REFERENCE}",
        ) from None
    return EnvSecret(env=ref) if isinstance(ref, str) else ref


def label(ref: EnvSecret | SecretsManagerSecret | SsmSecret) -> str:
    """How a reference is named in messages and in `loaded` (never its value)."""
    if isinstance(ref, EnvSecret):
        return ref.env
    if isinstance(ref, SecretsManagerSecret):
        return f"secretsmanager:{ref.secretsmanager}" + (f" key {ref.key}" if ref.key else "")
    return f"ssm:{ref.ssm}"


def read(
    raw: Any, where: str = "group_data", field: str = "secret_env", environ: Mapping[str, str] | None = None
) -> str:
    """The value of a `secret_env` entry (a SecretRef or its raw form), read once per process."""
    from opsrun.model import secrets

    ref = parse(raw, where, field)
    name = label(ref)
    if name in _values and environ is None:
        return _values[name]
    if isinstance(ref, EnvSecret):
        value = _from_env(ref.env, os.environ if environ is None else environ, where, field)
    elif isinstance(ref, SecretsManagerSecret):
        value = _from_secretsmanager(ref, where, field)
    else:
        value = _from_ssm(ref, where, field)
    secrets.register(value)
    if environ is None:
        _values[name] = value
    return value


def loaded() -> dict[str, str]:
    """Every value read so far, by reference label: what the controller passes to its worker (in memory)."""
    return dict(_values)


def preload(values: Mapping[str, str]) -> None:
    """Take the values the controller read (the worker's side of `loaded`), registered for redaction."""
    from opsrun.model import secrets

    for value in values.values():
        secrets.register(value)
    _values.update(values)


def forget() -> None:
    """Drop every value read (tests; a long-lived caller between runs)."""
    _values.clear()


def _from_env(name: str, environ: Mapping[str, str], where: str, field: str) -> str:
    value = environ.get(name)
    if not value:
        raise ConfigError(
            where,
            f"the environment variable {name} (for {field.rsplit('.', 1)[-1]}) is not set; nothing was touched.",
            field=field,
            fix=f"export {name}=... in the environment that runs opsrun (secret values are never read from "
            "group_data), or keep it in AWS: " + FIX_REFERENCE,
        )
    return value


def _unreadable(what: str, exc: Exception, where: str, field: str) -> ConfigError:
    """A ConfigError for an AWS read that failed: the reference and AWS's error code, never a value."""
    from botocore.exceptions import ClientError

    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    if code in MISSING:
        problem, fix = f"{what} does not exist", "create it, or correct the name (and the region: AWS_REGION)"
    else:
        problem = f"{what} could not be read ({code or 'error'})"
        fix = (
            "give the credentials that run opsrun secretsmanager:GetSecretValue / ssm:GetParameter (and "
            "kms:Decrypt on its key), and check AWS_REGION / AWS_PROFILE"
        )
    return ConfigError(where, f"{problem}; nothing was touched.", field=field, fix=fix)


def _from_secretsmanager(ref: SecretsManagerSecret, where: str, field: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from opsrun.aws import make_client

    what = f"the Secrets Manager secret {ref.secretsmanager}"
    try:
        answer = make_client("secretsmanager", where=where).get_secret_value(SecretId=ref.secretsmanager)
    except (BotoCoreError, ClientError) as exc:
        raise _unreadable(what, exc, where, field) from None
    text = answer.get("SecretString")
    if text is None:
        text = bytes(answer.get("SecretBinary") or b"").decode("utf-8", errors="replace")
    if ref.key is None:
        return _non_empty(str(text), what, where, field)
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ConfigError(
            where,
            f"{what} is not a JSON object, so it has no key {ref.key}.",
            field=field,
            fix='store it as JSON ({"KEY": "value"}), or drop "key" to use its whole string',
        )
    value = document.get(ref.key)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ConfigError(
            where,
            f"{what} has no key {ref.key} holding a string or a number.",
            field=field,
            fix=f'add {ref.key} to the secret, or correct "key" (its keys: {", ".join(sorted(document)) or "none"})',
        )
    return _non_empty(str(value), f"{what} key {ref.key}", where, field)


def _from_ssm(ref: SsmSecret, where: str, field: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from opsrun.aws import make_client

    what = f"the SSM parameter {ref.ssm}"
    try:
        parameter = make_client("ssm", where=where).get_parameter(Name=ref.ssm, WithDecryption=True)["Parameter"]
    except (BotoCoreError, ClientError) as exc:
        raise _unreadable(what, exc, where, field) from None
    if parameter.get("Type") != "SecureString":
        raise ConfigError(
            where,
            f"{what} is a {parameter.get('Type')} parameter: a secret is kept encrypted; nothing was touched.",
            field=field,
            fix=f"put it again as a SecureString: aws ssm put-parameter --name {ref.ssm} --type SecureString "
            "--overwrite --value ...",
        )
    return _non_empty(str(parameter.get("Value", "")), what, where, field)


def _non_empty(value: str, what: str, where: str, field: str) -> str:
    if not value:
        raise ConfigError(
            where, f"{what} is empty; nothing was touched.", field=field, fix="store the secret's value in it"
        )
    return value

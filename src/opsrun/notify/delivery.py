"""Delivering one message so that a blip does not lose it: each attempt is classified, a transient failure
is tried again after a backoff, a refusal is reported at once.

    NotifyError
      Transient     a connection error, a timeout, HTTP 429 or 5xx (with the Retry-After it came with):
                    tried again, up to Retry.attempts in all
      Refused       any other answer (a 4xx but 429: a bad key, a bad message): reported at once
      Undelivered   the last attempt failed too

Every wait is bounded: a backoff is a random part (full jitter) of base * 2**n, at most `cap`; a
Retry-After is honoured up to `retry_after_cap`; each attempt has its TIMEOUT. With the defaults a message
gives up after 5 attempts and at most 4 * 60 s of backoff.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from opsrun.errors import OpsrunError
from opsrun.model.secrets import redact

T = TypeVar("T")
TIMEOUT = 10.0  # one attempt: connect, send, read the answer


class NotifyError(OpsrunError):
    pass


class Transient(NotifyError):
    def __init__(self, what: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(what)


class Refused(NotifyError):
    attempts = 1  # set by `deliver` to the attempt that was refused


class Undelivered(NotifyError):
    def __init__(self, what: str, attempts: int):
        self.attempts = attempts
        super().__init__(what)


@dataclass(frozen=True)
class Retry:
    attempts: int = 5  # in all, the first one included
    base: float = 1.0  # the first backoff is up to this many seconds, doubled for each attempt after
    cap: float = 30.0  # no backoff longer than this
    retry_after_cap: float = 60.0  # a Retry-After longer than this is waited this long

    def wait(self, attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return float(rand() * min(self.cap, self.base * 2 ** (attempt - 1)))


RETRY = Retry()


def backoff(seconds: float) -> None:
    """The pause between two attempts (bounded by `Retry`). A backoff, not a wait for a condition: there is
    nothing to poll, the point is to let the other side recover."""
    time.sleep(seconds)  # ok: a backoff between two attempts, bounded by Retry


def deliver(
    attempt: Callable[[], T],
    retry: Retry = RETRY,
    *,
    pause: Callable[[float], None] = backoff,
    rand: Callable[[], float] = random.random,
) -> tuple[T, int]:
    """Call `attempt` until it succeeds: (its result, the attempts made). A Transient failure is tried again
    after `retry.wait`; Refused goes up at once; Undelivered when the last attempt failed too."""
    for n in range(1, retry.attempts + 1):
        try:
            return attempt(), n
        except Refused as exc:
            exc.attempts = n
            raise
        except Transient as exc:
            if n == retry.attempts:
                raise Undelivered(f"{exc} (gave up after {n} attempts)", n) from None
            pause(retry.wait(n, exc.retry_after, rand))
    raise Undelivered("no attempt allowed (Retry.attempts is 0)", 0)


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """An HTTP Retry-After header in seconds: a number of seconds or an HTTP date (None: absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now(), 0.0)


def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST `payload` as JSON: the JSON answer of a 2xx ({} when it is not JSON); Transient or Refused."""
    request = urllib.request.Request(  # noqa: S310 - targets are checked to be http(s) when they are parsed
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - as above
            status, body = response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        raise _answer(exc.code, exc.read(4096) if exc.fp else b"", exc.headers.get("Retry-After")) from None
    except urllib.error.URLError as exc:  # refused, reset, no route, DNS, timed out while connecting
        raise Transient(f"cannot connect: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:  # reset or timed out mid-answer, a broken answer
        raise Transient(f"{type(exc).__name__}: {exc}") from None
    if not 200 <= status < 300:
        raise _answer(status, body, None)
    return _json(body)


def _answer(status: int, body: bytes, after: str | None) -> NotifyError:
    said = _json(body)
    why = said.get("message") or said.get("error") or ""
    errors = said.get("errors")
    if isinstance(errors, list) and errors:
        why = f"{why} ({'; '.join(str(e) for e in errors[:3])})" if why else "; ".join(str(e) for e in errors[:3])
    text = redact(f"HTTP {status}" + (f": {why}" if why else ""))[:300]
    if status == 429 or status >= 500:
        return Transient(text, retry_after(after))
    return Refused(text)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def aws_failure(exc: Exception) -> NotifyError | None:
    """A botocore error as Transient (no connection, throttled, 5xx) or Refused (any other answer); None
    for anything else (a bug: let it surface)."""
    from botocore import exceptions as aws

    if isinstance(exc, aws.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(exc.response.get("Error", {}).get("Code", ""))
        text = redact(f"{code or 'HTTP ' + str(status)}: {exc.response.get('Error', {}).get('Message', '')}")
        throttled = status == 429 or status >= 500 or "Throttl" in code or code == "RequestLimitExceeded"
        return Transient(text) if throttled else Refused(text)
    if isinstance(exc, aws.ConnectionError | aws.HTTPClientError | aws.ResponseParserError):
        # no connection, a timeout, a closed connection; an answer that is not AWS's (a gateway's error page)
        return Transient(f"{type(exc).__name__}: {redact(str(exc))[:300]}")
    if isinstance(exc, aws.NoCredentialsError):
        return Refused("no AWS credentials found")
    return None

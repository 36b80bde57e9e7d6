"""Errors that opsrun reports to a person, each with the exit code the CLI returns.

    OpsrunError (1)
      ConfigError (2)       inventory / group_data / deploy / suite missing or invalid:
                            "path: field: problem. Fix: ..."
      LabError (2)          the local lab cannot be built or started here (what to install or free)
      LockHeld (2)          another run holds the inventory lock; nothing was touched
      WaitTimeout (1)       a polled condition did not hold before its deadline: what, how long, last state
      BalancerError (1)     the load balancer refused or answered unexpectedly
        Throttled (1)       its API asked for fewer calls and botocore's retries did not get through
      StoreUnavailable (4)  the state store did not answer within its retry window (its address, the fix)
      Interrupted (130)     the operator's second Ctrl-C ended a wait (opsrun.support.waiting.Stop)

A host that fails is not an exception: it is that host's outcome in the run's result. A *failure* takes
its exit code from the exception; an *outcome* (a run where hosts failed, drift found)
takes it from its result object. opsrun.cli maps both.
"""

from __future__ import annotations

import os
from typing import ClassVar


class OpsrunError(Exception):
    exit_code: ClassVar[int] = 1


class ConfigError(OpsrunError):
    """Bad input found before any host is touched. Names the file, the field and the fix."""

    exit_code: ClassVar[int] = 2

    def __init__(self, path: str | os.PathLike[str], problem: str, *, field: str | None = None, fix: str | None = None):
        self.path = str(path)
        self.field = field
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + problem + (f" Fix: {fix}" if fix else ""))


class LabError(OpsrunError):
    exit_code: ClassVar[int] = 2


class LockHeld(OpsrunError):
    exit_code: ClassVar[int] = 2


class WaitTimeout(OpsrunError):
    def __init__(self, what: str, timeout: float, last: object = None):
        self.what = what
        self.timeout = timeout
        self.last = last
        seen = f"; last seen: {last}" if last is not None else ""
        super().__init__(f"timed out after {timeout:g}s waiting for {what}{seen}")


class BalancerError(OpsrunError):
    pass


class Throttled(BalancerError):
    """The balancer's API is throttling opsrun's calls (a wait backs off and asks again before its deadline)."""


class StoreUnavailable(OpsrunError):
    """The state store did not answer within its retry window: its address (no password), the last error
    and the fix. A run that meets it mid-way ends safely and keeps its outcome locally (opsrun.store)."""

    exit_code: ClassVar[int] = 4

    def __init__(self, where: str, seconds: float, last: str, fix: str):
        self.where, self.seconds, self.last, self.fix = where, seconds, last, fix
        super().__init__(f"the state store at {where} did not answer for {seconds:g}s ({last}). Fix: {fix}")


class Interrupted(OpsrunError):
    exit_code: ClassVar[int] = 130

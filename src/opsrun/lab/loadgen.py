"""A small HTTP load generator for the lab: N threads sending GETs to one URL until stopped, counting
answers that are not the expected status. Bounded in time and in requests; only for lab addresses."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class LoadGenerator:
    def __init__(
        self,
        url: str,
        *,
        threads: int = 4,
        max_seconds: float = 300,
        max_requests: int = 200_000,
        max_rate: float = 300.0,
    ):
        split = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = split.hostname or "", split.port or 80, split.path or "/"
        self.threads, self.max_seconds, self.max_requests = threads, max_seconds, max_requests
        # A new connection per request leaves a TIME_WAIT socket for 60 s: capped at 300/s, a minute of load
        # uses 18,000 of the 28,000 local ports, so the generator never runs out of them and reports that
        # as the balancer's failure (it did, at 620/s).
        self.interval = threads / max_rate
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> LoadGenerator:
        self.started = time.monotonic()
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=10)
        self.result.seconds = time.monotonic() - self.started

    def _work(self) -> None:
        deadline = self.started + self.max_seconds
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            next_at += self.interval
            if (ahead := next_at - time.monotonic()) > 0:
                self._stop.wait(ahead)  # pacing to max_rate, not waiting for a condition
            error = None
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    error = f"HTTP {resp.status}"
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
            finally:
                conn.close()
            with self._lock:
                self.result.requests += 1
                if error:
                    self.result.failures += 1
                    self.result.errors[error] += 1
                if self.result.requests >= self.max_requests:
                    self._stop.set()

"""Run tests each in a pytest process of its own, so that a test which passes only after others ran fails.

    python tests/alone.py [PYTEST_SELECTION ...]     (default: tests/lab; `make test-alone TESTS=...`)

The selection is what pytest takes (paths, node ids, `-k EXPR`); each collected test is then run by itself,
in file order, on one lab kept up between them (OPSRUN_KEEP_LAB=1: each test's fixtures must bring the lab
to the state it needs from whatever the test before left). Prints a line a test and a summary; exits 1 if
any failed, and brings the lab down at the end unless OPSRUN_KEEP_LAB was set by the caller.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def collect(selection: list[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *selection],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line and not line.startswith(" ")]
    if proc.returncode != 0 or not ids:
        sys.exit(f"collecting {' '.join(selection)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return ids


def main(argv: list[str]) -> int:
    selection = argv or ["tests/lab"]
    ids = collect(selection)
    kept_by_caller = bool(os.environ.get("OPSRUN_KEEP_LAB"))
    env = {**os.environ, "OPSRUN_KEEP_LAB": "1"}
    failed: list[str] = []
    started = time.monotonic()
    print(f"{len(ids)} tests, each in a pytest of its own", flush=True)
    for i, test_id in enumerate(ids, 1):
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", test_id],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        verdict = "passed" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"[{i}/{len(ids)}] {time.monotonic() - t0:6.1f}s {verdict} {test_id}", flush=True)
        if proc.returncode != 0:
            failed.append(test_id)
            print(proc.stdout[-6000:] + proc.stderr[-2000:], flush=True)
    minutes = (time.monotonic() - started) / 60
    print(f"{len(ids) - len(failed)} of {len(ids)} passed alone in {minutes:.1f} min", flush=True)
    for test_id in failed:
        print(f"failed alone: {test_id}")
    if not kept_by_caller and any("tests/lab" in test_id for test_id in ids):
        subprocess.run([sys.executable, "-m", "opsrun", "lab", "down"], cwd=REPO, check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

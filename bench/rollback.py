"""Benchmark: a bad release under load, rolled back (`rolling.on_failure: "rollback"`) against halted.

On the running lab's web hosts (3 by default), from an ops repo in git (a copy of this one), with the web tier
converged first (nginx, the way the load goes in): a good release is applied, then a release whose /health fails
on the host second by name (web2 of 3, the second of the plan; web10 of 12, the tenth: nine hosts take the bad
release before it fails), while the lab's load generator sends requests through HAProxy. Printed for each
policy: the apply's wall time (from the bad release reaching its first host to every host back on the good
one, or to the halt), the failed requests and the requests sent, and where the hosts are afterwards (their
/health versions; "HTTP 500" where the bad release fails it). After the halted run the fleet is mixed: the good
release is applied again before the next measurement, not counted.

Run by hand as root from the repository, with the lab up and nothing else using it:
    python bench/rollback.py [HOSTS]   (default 3)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from apply_nochange import OPSRUN, demo_token, ops_copy

from opsrun.lab import Lab
from opsrun.lab.loadgen import LoadGenerator

WEB = "group_data/web.py"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def commit(root: Path, message: str, appended: str = "") -> None:
    if appended:
        (root / WEB).write_text((root / WEB).read_text() + appended)
    git(root, "add", "-A")
    git(
        root,
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@localhost",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        message,
    )


def apply(root: Path, deploy: str = "pm2") -> tuple[int, dict, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [OPSRUN, "--project", str(root), "apply", "lab", deploy, "--format", "json"], capture_output=True, text=True
    )
    return proc.returncode, json.loads(proc.stdout or "{}"), time.perf_counter() - start


def versions(addresses: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, address in addresses.items():
        try:
            with urllib.request.urlopen(f"http://{address}:3001/health", timeout=5) as r:
                out[name] = json.loads(r.read())["version"]
        except urllib.error.HTTPError as exc:  # the bad release's /health on the host it breaks
            out[name] = f"HTTP {exc.code}"
    return out


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    demo_token()
    lab = Lab()
    lab.up(count)
    addresses = {h.name: h.address for h in lab.status()}
    second = sorted(addresses)[1]
    with tempfile.TemporaryDirectory() as tmp:
        root = ops_copy(Path(tmp) / "ops")
        (root / ".gitignore").write_text(".opsrun/\n")
        git(root, "init", "-q")
        quick = '\nrolling = {**rolling, "health": {**rolling["health"], "timeout": 10}}\n'
        commit(root, "good", quick + '\npm2_apps[0]["env"]["APP_VERSION"] = "1"\n')
        server = root / "apps" / "demo" / "server.js"
        good_server = server.read_text()
        code, doc, _ = apply(root, "nginx")  # the web tier the load goes through
        assert code == 0, doc
        rows = []
        for policy in ("halt", "rollback"):
            server.write_text(good_server)
            commit(root, f"good, on_failure {policy}", f'\nrolling["on_failure"] = {policy!r}\n')
            code, doc, _ = apply(root)
            assert code == 0, doc
            server.write_text(
                good_server.replace(
                    'if (req.url === "/health") {',
                    f'if (req.url === "/health" && os.hostname() === {second!r}) {{\n'
                    '      reply(res, 500, "text/plain", "broken here\\n");\n'
                    '    } else if (req.url === "/health") {',
                )
            )
            commit(root, "bad", '\npm2_apps[0]["env"]["APP_VERSION"] = "2"\n')
            with LoadGenerator(f"http://{lab.frontend()}/", threads=8, max_seconds=600) as load:
                code, doc, seconds = apply(root)
            rows.append((policy, code, seconds, load.result.failures, load.result.requests, versions(addresses)))
            git(root, "revert", "--no-edit", "HEAD")  # the good release again, for the next policy
            server.write_text(good_server)
            commit(root, "good again")
            apply(root)
    print(f"{count} hosts, a release whose /health fails on {second}, 8 client threads through HAProxy")
    print(f"{'on_failure':10} {'exit':>4} {'apply s':>8} {'failed':>7} {'requests':>9}  versions after")
    for policy, code, seconds, failed, sent, after in rows:
        print(f"{policy:10} {code:4} {seconds:8.1f} {failed:7} {sent:9}  {after}")


if __name__ == "__main__":
    main()

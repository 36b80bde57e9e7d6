"""The demo: the three jobs opsrun exists for, on the lab, as the commands a new user would type.

    python -m opsrun.lab.demo            run the steps (what `make demo` does), then list what they made
    python -m opsrun.lab.demo --tour     run them and write each step's real output into docs/tour.md

STEPS is the one list of the commands: the tour (docs/tour.md) shows exactly these, in this order (a unit
test compares them, tests/lab/test_tour.py runs the page's own), and `--tour` rewrites only the output
under each `$ command` line of the tour's ```console blocks, never the prose around them.

Secrets come from the environment, as everywhere in opsrun. The demo makes up the ones that are not set
(`demo_env`) and keeps them in .opsrun/demo.env (mode 600), so that a second run uses the same ones and
changes nothing; export your own to use them instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from opsrun.lab.releases import BAD_RELEASE

REPORTS = ".opsrun/reports"
TOUR = "docs/tour.md"  # the page the tour is written into, relative to the repository
BAD_APPLY = "opsrun apply lab pm2"  # the bad release's rollout: its canary fails, on_failure rolls it back
LAST_APPLY = ".opsrun/results/apply-lab-pm2-latest.json"  # its result document (opsrun.runs.saving.save)
HAND_EDIT = "sed -i 's/keepalive_timeout 65/keepalive_timeout 5/' /etc/nginx/nginx.conf"


@dataclass(frozen=True)
class Step:
    command: str  # exactly as the tour (TOUR) shows it after "$ "
    expect: int = 0  # the exit code that means the step did what it shows
    job: str = "setup"  # web tier | data tier | patching | drift | dr-test | canary


STEPS = [
    Step("opsrun lab up", job="lab"),
    Step("opsrun apply lab pm2 --serial 100%", job="web tier"),
    Step("opsrun apply lab nginx", job="web tier"),
    Step("opsrun verify lab nginx", job="web tier"),
    Step("opsrun lab install opsrun-demo opsrun-mongod-standin", job="data tier"),
    Step("opsrun apply lab redis_cluster", job="data tier"),
    Step("opsrun apply lab mongo_replicaset", job="data tier"),
    Step("opsrun lab publish", job="patching"),
    Step("opsrun lab load -- opsrun apply lab patching", job="patching"),
    Step(f"opsrun drift lab --out {REPORTS}", job="drift"),
    Step(f'opsrun lab ssh web2 "{HAND_EDIT}"', job="drift"),
    Step(f"opsrun drift lab --out {REPORTS}", expect=3, job="drift"),
    Step("opsrun apply lab nginx --limit web2", job="drift"),
    Step("opsrun lab postgres", job="dr-test"),
    Step(f"opsrun dr-test lab --drill --out {REPORTS}", job="dr-test"),
    Step(f"git apply {BAD_RELEASE}", job="canary"),
    Step(f"opsrun lab load -- {BAD_APPLY}", expect=1, job="canary"),
    Step(f"git apply -R {BAD_RELEASE}", job="canary"),
]

#: the secrets the lab's group_data names (secret_env), and how the demo makes one up
PG_PORTS = (15432, 15433)  # primary, replica; on 127.0.0.1 only


def made_up(names: Mapping[str, str]) -> dict[str, str]:
    """A value for each secret the lab needs that is not in `names`: random, never a fixed string."""
    out: dict[str, str] = {}
    if "OPSRUN_DEMO_API_TOKEN" not in names:
        out["OPSRUN_DEMO_API_TOKEN"] = "demo-" + secrets.token_hex(12)
    if "OPSRUN_REDIS_PASSWORD" not in names:
        out["OPSRUN_REDIS_PASSWORD"] = "redis-" + secrets.token_hex(12)
    if "OPSRUN_MONGO_KEYFILE" not in names:
        out["OPSRUN_MONGO_KEYFILE"] = secrets.token_hex(48)  # base64 characters only, as mongod wants
    if "OPSRUN_PG_PRIMARY_URL" not in names and "OPSRUN_PG_REPLICA_URL" not in names:
        password = secrets.token_hex(12)
        for name, port in zip(("OPSRUN_PG_PRIMARY_URL", "OPSRUN_PG_REPLICA_URL"), PG_PORTS, strict=True):
            out[name] = f"postgresql://opsrun:{password}@127.0.0.1:{port}/opsrun"
    return out


def demo_env(saved: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with every secret the lab needs: the operator's, else the ones saved in `saved`
    by an earlier run, else made up now (and saved, mode 600)."""
    env = dict(os.environ if environ is None else environ)
    kept: dict[str, str] = {}
    if saved is not None and saved.exists():
        for line in saved.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.isidentifier():
                kept[name] = value
    new = made_up({**kept, **env})
    if saved is not None and new:
        saved.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:
            f.writelines(f"{k}={v}\n" for k, v in new.items())
    return {**env, **{k: v for k, v in kept.items() if k not in env}, **new}


def argv(command: str, bindir: Path) -> list[str]:
    """The step's command as a process: `opsrun` is the virtualenv's."""
    words = shlex.split(command)
    return [str(bindir / words[0]), *words[1:]] if words[0] == "opsrun" else words


@dataclass
class Done:
    step: Step
    code: int
    output: str
    seconds: float


def run_step(step: Step, env: dict[str, str], cwd: Path, echo: bool = True) -> Done:
    """Run one step with stdout and stderr merged, as a terminal shows them; echo it while it runs."""
    bindir = Path(sys.executable).parent
    env = {**env, "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    if echo:
        print(f"\n$ {step.command}", flush=True)
    started = time.monotonic()
    lines = []
    with subprocess.Popen(
        argv(step.command, bindir), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
        code = proc.wait()
    return Done(step, code, "".join(lines), time.monotonic() - started)


def run_all(env: dict[str, str], cwd: Path, echo: bool = True) -> list[Done]:
    """Every step in order; stops at the first that does not exit as it should (SystemExit naming it)."""
    done = []
    for step in STEPS:
        result = run_step(step, env, cwd, echo)
        done.append(result)
        if result.code != step.expect:
            ran = [d.step.command for d in done]
            left = f"git apply {BAD_RELEASE}" in ran and f"git apply -R {BAD_RELEASE}" not in ran
            undo = f"; group_data/web.py still holds the bad release (git apply -R {BAD_RELEASE})" if left else ""
            raise SystemExit(f"demo: `{step.command}` exited {result.code}, not {step.expect}: stopped here{undo}")
    return done


# ---------------------------------------------------------------------------------------------- summary


def load_line(output: str) -> str:
    found = re.findall(r"^load: .*$", output, flags=re.M)
    return found[-1] if found else "load: no line"


def summary(done: list[Done], cwd: Path) -> list[str]:
    """One short list: what the demo produced and where."""
    reports = cwd / REPORTS
    by_job: dict[str, float] = {}
    for d in done:
        by_job[d.step.job] = by_job.get(d.step.job, 0.0) + d.seconds
    dr_json = sorted(reports.glob("dr-test-lab-*.json"))
    from opsrun.lab import Lab

    lab = Lab()
    lines = [
        f"lab: {', '.join(lab.host_names())} behind HAProxy at http://{lab.frontend()}/, left up "
        "(`opsrun lab status`; `opsrun lab down` removes it)",
        f"patching under load: {load_line(_output(done, 'opsrun lab load -- opsrun apply lab patching'))}",
        f"drift report (a hand edit on web2, found and repaired): {reports / 'drift-lab.html'}",
    ]
    if dr_json:
        doc = json.loads(dr_json[-1].read_text())
        measured = ", ".join(
            f"{s['system']} RTO {_s(s['rto_seconds'])} RPO {_s(s['rpo_seconds'])}"
            for s in doc["systems"]
            if s["rto_seconds"] is not None or s["rpo_seconds"] is not None
        )
        lines.append(f"DR report ({doc['status']}; {measured}): {dr_json[-1].with_suffix('.html')}")
    if any(d.step.command == f"opsrun lab load -- {BAD_APPLY}" for d in done):
        lines.append(bad_release_line(cwd, load_line(_output(done, f"opsrun lab load -- {BAD_APPLY}"))))
    lines += [
        f"run results (JSON, one per run): {cwd / '.opsrun/results'}",
        f"history and findings: {cwd / '.opsrun/state.db'} (`opsrun history lab`)",
        "time: " + ", ".join(f"{job} {secs:.0f}s" for job, secs in by_job.items()),
    ]
    return lines


def bad_release_line(cwd: Path, load: str) -> str:
    """The bad release's rollout in a line: its canary's verdict, the rollback and what users saw."""
    doc = json.loads((cwd / LAST_APPLY).read_text())
    canary, back = doc.get("canary") or {}, doc.get("rollback") or {}
    to = str(back.get("to_revision") or "?")[:12]
    return (
        f"a bad release under load: canary {', '.join(canary.get('hosts', []))} {canary.get('outcome', 'not judged')} "
        f"after {canary.get('seconds', 0):.0f}s, rollback to {to} {back.get('status', 'not attempted')}; {load}"
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _output(done: list[Done], prefix: str) -> str:
    return "".join(d.output for d in done if d.step.command.startswith(prefix))


# ------------------------------------------------------------------------------------------------- tour

BLOCK = re.compile(r"(```console\n\$ (?P<command>[^\n]*)\n)(?P<body>.*?)(```)", re.S)
TOUR_BEGIN, TOUR_END = "<!-- tour: begin -->", "<!-- tour: end -->"
MAX_LINES = 40


def tour_section(page: str) -> tuple[int, int]:
    start, end = page.find(TOUR_BEGIN), page.find(TOUR_END)
    if start < 0 or end < start:
        raise ValueError(f"{TOUR} has no {TOUR_BEGIN} ... {TOUR_END} section")
    return start, end


def tour_commands(page: str) -> list[str]:
    """The `$ command` lines of the tour page, in order."""
    start, end = tour_section(page)
    return [m["command"] for m in BLOCK.finditer(page, start, end)]


def shown(output: str, root: Path) -> str:
    """A step's output as the tour shows it: this machine's paths as ~/ops, long outputs cut in the
    middle with the count of lines left out (the whole output is on the demo's terminal)."""
    text = output.replace(str(root), "~/ops").rstrip("\n")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        keep = MAX_LINES // 2
        lines = [*lines[:keep], f"[... {len(lines) - 2 * keep} lines ...]", *lines[-keep:]]
    return "\n".join(lines) + "\n" if lines else ""


def rewrite_tour(page: str, done: list[Done], root: Path) -> str:
    """The tour page with each block's output replaced by its step's real output; the commands must be the
    steps', in order."""
    commands = tour_commands(page)
    ran = [d.step.command for d in done]
    if commands != ran:
        raise ValueError(f"{TOUR}'s commands {commands} are not the demo's steps {ran}")
    start, end = tour_section(page)
    outputs = iter(done)

    def one(m: re.Match[str]) -> str:
        return m.group(1) + shown(next(outputs).output, root) + m.group(4)

    return page[:start] + BLOCK.sub(one, page[start:end]) + page[end:]


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opsrun.lab.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tour", action="store_true", help=f"write the real outputs into {TOUR}")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the ops repository (default: here)")
    opts = parser.parse_args(args)
    root = opts.project.resolve()
    env = demo_env(root / ".opsrun" / "demo.env")
    started = time.monotonic()
    done = run_all(env, root)
    print(f"\nThe demo ran {len(done)} commands in {time.monotonic() - started:.0f}s. What it produced:")
    for line in summary(done, root):
        print(f"  - {line}")
    if opts.tour:
        page = root / TOUR
        page.write_text(rewrite_tour(page.read_text(), done, root))
        print(f"{TOUR}: the tour's output written from this run ({dt.date.today().isoformat()})")


if __name__ == "__main__":
    main()

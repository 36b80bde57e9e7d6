"""The demo's one list of commands (opsrun.lab.demo.STEPS) and the tour page (docs/tour.md): the same commands
in the same order; `--tour` rewrites only the output under each command; secrets made up once and kept."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess

import pytest

from opsrun.errors import LabError
from opsrun.lab import aptrepo, demo, postgres
from opsrun.lab.config import LabConfig
from tests.conftest import REPO


def tour_page() -> str:
    return (REPO / demo.TOUR).read_text()


def test_the_tour_page_is_the_demo_steps_in_order():
    assert demo.tour_commands(tour_page()) == [s.command for s in demo.STEPS]


def test_the_demo_covers_the_three_jobs():
    commands = [s.command for s in demo.STEPS]
    assert commands[0] == "opsrun lab up"
    for deploy in ("pm2", "nginx", "redis_cluster", "mongo_replicaset"):
        assert [c for c in commands if c.split(" --")[0] == f"opsrun apply lab {deploy}"], deploy
    assert commands.index("opsrun lab publish") < commands.index("opsrun lab load -- opsrun apply lab patching")
    drifts = [i for i, c in enumerate(commands) if c.startswith("opsrun drift lab")]
    assert [demo.STEPS[i].expect for i in drifts] == [0, 3]
    assert commands[drifts[0] + 1].startswith("opsrun lab ssh web2 ")
    assert f"opsrun dr-test lab --drill --out {demo.REPORTS}" in commands
    # it ends with a bad release under load, caught by its canary and rolled back, then taken away
    assert commands[-3:] == [
        "git apply apps/demo-fails-1-in-5.patch",
        "opsrun lab load -- opsrun apply lab pm2",
        "git apply -R apps/demo-fails-1-in-5.patch",
    ]
    assert [s.expect for s in demo.STEPS[-3:]] == [0, 1, 0]  # the apply fails at its canary: exit 1
    assert commands.index("opsrun apply lab pm2 --serial 100%") < len(commands) - 3  # the good run to go back to


def done(outputs: list[str]) -> list[demo.Done]:
    return [demo.Done(s, s.expect, out, 1.0) for s, out in zip(demo.STEPS, outputs, strict=True)]


def test_rewrite_replaces_only_the_outputs_and_paths_of_this_machine():
    page = tour_page()
    outputs = [f"output of step {i}: {REPO}/.opsrun/x\n" for i in range(len(demo.STEPS))]
    new = demo.rewrite_tour(page, done(outputs), REPO)
    assert demo.tour_commands(new) == demo.tour_commands(page)
    assert "output of step 3: ~/ops/.opsrun/x\n```" in new and str(REPO) not in new.split(demo.TOUR_END)[0]
    assert all(o.replace(str(REPO), "~/ops") in new for o in outputs)
    others = [f"other output {i}\n" for i in range(len(demo.STEPS))]
    again = demo.rewrite_tour(new, done(others), REPO)  # only the outputs change, the prose stays
    prose = [line for line in new.splitlines() if not line.startswith("output of step")]
    assert [line for line in again.splitlines() if not line.startswith("other output")] == prose
    assert demo.rewrite_tour(new, done(outputs), REPO) == new  # idempotent


def test_rewrite_refuses_a_page_whose_commands_drifted_apart():
    page = tour_page().replace("$ opsrun lab publish\n", "$ opsrun lab publish 1.1\n")
    with pytest.raises(ValueError, match="not the demo's steps"):
        demo.rewrite_tour(page, done(["x\n"] * len(demo.STEPS)), REPO)


def test_long_outputs_are_cut_in_the_middle_saying_how_much():
    text = demo.shown("".join(f"line {i}\n" for i in range(100)), REPO)
    lines = text.splitlines()
    assert len(lines) == demo.MAX_LINES + 1 and lines[20] == "[... 60 lines ...]" and lines[-1] == "line 99"


def test_secrets_are_made_up_once_kept_private_and_yours_win(tmp_path):
    saved = tmp_path / ".opsrun" / "demo.env"
    first = demo.demo_env(saved, {"PATH": "/bin"})
    names = ("OPSRUN_DEMO_API_TOKEN", "OPSRUN_REDIS_PASSWORD", "OPSRUN_MONGO_KEYFILE")
    assert all(first[n] for n in names)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    again = demo.demo_env(saved, {"PATH": "/bin"})
    assert {n: again[n] for n in (*names, *demo_pg())} == {n: first[n] for n in (*names, *demo_pg())}
    mine = demo.demo_env(saved, {"OPSRUN_REDIS_PASSWORD": "mine"})
    assert mine["OPSRUN_REDIS_PASSWORD"] == "mine"
    primary, replica = postgres.servers(first)
    assert (primary.port, replica.port) == demo.PG_PORTS and primary.password == replica.password


def demo_pg() -> tuple[str, str]:
    return postgres.PRIMARY_ENV, postgres.REPLICA_ENV


@pytest.mark.parametrize(
    ("primary", "replica", "problem"),
    [
        (None, "postgresql://u:p@127.0.0.1:15433/d", "OPSRUN_PG_PRIMARY_URL is not set"),
        ("postgresql://u:p@10.0.0.5:15432/d", "postgresql://u:p@127.0.0.1:15433/d", "must point at 127.0.0.1"),
        ("postgresql://u@127.0.0.1:15432/d", "postgresql://u:p@127.0.0.1:15433/d", "has no password"),
        ("postgresql://u:p@127.0.0.1:15432/d", "postgresql://u:q@127.0.0.1:15433/d", "differ only in the port"),
        ("postgresql://u:p@127.0.0.1:15432/d", "postgresql://u:p@127.0.0.1:15432/d", "two different ports"),
    ],
)
def test_lab_postgres_refuses_urls_it_cannot_serve(primary, replica, problem):
    env = {k: v for k, v in {postgres.PRIMARY_ENV: primary, postgres.REPLICA_ENV: replica}.items() if v}
    with pytest.raises(LabError, match=problem):
        postgres.servers(env)


def test_publish_defaults_to_the_version_after_the_newest(tmp_path):
    cfg = LabConfig(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    assert aptrepo.next_version(cfg) == "1.0"
    repo = aptrepo.repo_dir(cfg)
    repo.mkdir(parents=True)
    for v in ("1.0", "1.9", "1.10"):
        (repo / f"opsrun-demo_{v}_all.deb").write_bytes(b"")
    assert aptrepo.versions(cfg) == ["1.0", "1.9", "1.10"] and aptrepo.next_version(cfg) == "1.11"
    with pytest.raises(LabError, match="not a Debian version"):
        aptrepo.publish(cfg, "1.0; touch /tmp/x")


def test_the_standin_package_installs_mongod_as_mongodbs_package_would(tmp_path):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("no dpkg-deb here")
    cfg = LabConfig(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    deb = aptrepo.publish_standin(cfg)
    assert deb.name == f"opsrun-mongod-standin_{aptrepo.standin_version()}_all.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "./usr/bin/mongod" in listing and "./lib/systemd/system/mongod.service" in listing
    assert "Package: opsrun-mongod-standin" in (aptrepo.repo_dir(cfg) / "Packages").read_text()
    assert aptrepo.publish_standin(cfg) == deb  # once per version


def test_the_bad_release_line_says_the_verdict_the_rollback_and_what_users_saw(tmp_path):
    doc = {
        "canary": {"hosts": ["web1"], "outcome": "breach", "seconds": 4.2},
        "rollback": {"to_revision": "0123456789abcdef+dirty", "status": "succeeded"},
    }
    (tmp_path / demo.LAST_APPLY).parent.mkdir(parents=True)
    (tmp_path / demo.LAST_APPLY).write_text(json.dumps(doc))
    load = "load: 9000 requests through HAProxy (300/s), failed: 95 {'HTTP 500': 95}"
    assert demo.bad_release_line(tmp_path, load) == (
        "a bad release under load: canary web1 breach after 4s, rollback to 0123456789ab succeeded; " + load
    )

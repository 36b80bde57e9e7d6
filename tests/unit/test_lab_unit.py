"""Pure parts of the lab: prerequisites, apt sources, recipe hashing, per-host files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from opsrun import lab as lab_module
from opsrun.errors import LabError
from opsrun.lab import hosts, image
from opsrun.lab.config import MAX_ADDRESSES, LabConfig, host_name

DATA = Path(__file__).resolve().parents[1] / "data" / "apt-sources"


def test_not_root_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match=r"needs root .* Fix: run as root"):
        lab_module.check_prerequisites()


def test_missing_tools_name_the_packages_to_install(monkeypatch):
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(
        lab_module.shutil, "which", lambda tool: None if tool in ("systemd-nspawn", "debootstrap") else real(tool)
    )
    with pytest.raises(LabError) as err:
        lab_module.check_prerequisites()
    assert str(err.value) == (
        "the lab needs debootstrap, systemd-container. Fix: apt-get install debootstrap systemd-container"
    )
    assert err.value.exit_code == 2


def test_sources_give_the_main_archive_not_security():
    sources = {"debian.sources": (DATA / "debian.sources").read_text()}
    uris = image.source_uris(sources)
    assert len(uris) == 2 and any("security" in u for u in uris)
    assert "security" not in image.mirror(sources)
    assert image.mirror(sources) in uris


def test_one_line_style_sources_are_read():
    sources = {"x.list": "# comment\ndeb [trusted=yes] http://archive.example/debian bookworm main\n"}
    assert image.source_uris(sources) == ["http://archive.example/debian"]


SOURCES = {
    "debian.sources": "URIs: http://a/debian\nSuites: bookworm\n",
    "extra.sources": "URIs: http://a/extra\nSuites: bookworm\n",
}


@pytest.mark.parametrize(
    "changed",
    [
        {**SOURCES, "debian.sources": "URIs: http://b/debian\nSuites: bookworm\n"},  # another mirror
        {**SOURCES, "debian.sources": SOURCES["debian.sources"] + "Components: main contrib\n"},
        {**SOURCES, "more.sources": "URIs: http://c/more\nSuites: bookworm\n"},  # a file added
        {"debian.sources": SOURCES["debian.sources"]},  # a file removed
        {"other-name.sources": SOURCES["debian.sources"], "extra.sources": SOURCES["extra.sources"]},  # renamed
    ],
    ids=["mirror", "components", "file added", "file removed", "file renamed"],
)
def test_recipe_hash_changes_when_the_sources_change(changed):
    assert image.recipe_hash(changed) != image.recipe_hash(SOURCES)


def test_recipe_hash_does_not_change_with_what_is_not_a_source(monkeypatch):
    """The same sources in another order, and a lab with other addresses, ports, bridge and folders, share
    one base image: its folder name is the same key."""
    monkeypatch.setattr(image, "machine_sources", lambda: dict(SOURCES))
    key = image.recipe_hash(SOURCES)
    assert image.recipe_hash(dict(reversed(SOURCES.items()))) == key
    one = LabConfig(Path("/l1"), Path("/c"))
    other = LabConfig(Path("/l2"), Path("/c"), subnet="10.99.3", bridge="labbr9", apt_port=1, npm_port=2, repo_port=3)
    assert image.base_dir(one) == image.base_dir(other) == Path("/c") / f"base-{key}"


def test_host_files_point_apt_and_npm_at_the_bridge():
    cfg = LabConfig(Path("/l"), Path("/c"), subnet="10.231.9")
    files = hosts.lab_files(cfg, "web2")
    assert 'Acquire::http::Proxy "http://10.231.9.1:3142";' in files["/etc/apt/apt.conf.d/00lab-proxy"]
    assert files["/etc/npmrc"].startswith("registry=http://10.231.9.1:4873/\n")
    assert "127.0.1.1 web2" in files["/etc/hosts"].splitlines()
    assert "10.231.9.12 web2" in files["/etc/hosts"].splitlines()


@pytest.mark.parametrize("prefix", ["opsrun-", "opsrun-t-"])
def test_interface_names_fit_ifnamsiz_and_stay_apart_up_to_the_last_address(prefix):
    cfg = LabConfig(Path("/l"), Path("/c"), prefix=prefix)
    names = {cfg.veth(host_name(i)) for i in range(1, MAX_ADDRESSES + 1)}
    assert len(names) == MAX_ADDRESSES and max(len(n) for n in names) <= 15
    assert cfg.veth("web1") == f"v{prefix}web1"
    assert LabConfig(Path("/l"), Path("/c"), prefix="opsrun-t-").veth("web1") != LabConfig(Path("/l"), Path("/c")).veth(
        "web1"
    )


def test_the_poweroff_wait_grows_with_the_hosts_powering_off_together():
    from opsrun.lab.hosts import poweroff_timeout

    assert poweroff_timeout(1) == 30
    assert poweroff_timeout(100) > 60  # 100 hosts on 2 cores took more than 30 s each: down must not give up
    assert poweroff_timeout(12) < poweroff_timeout(50) < poweroff_timeout(100)


def test_a_cgroup_that_goes_away_while_its_processes_are_listed_is_skipped(tmp_path, monkeypatch):
    """`lab down` lists a host's processes while systemd inside it is removing its own cgroups (at 50 hosts
    it raised FileNotFoundError on a console-getty.service cgroup gone mid-walk)."""
    import os

    top = tmp_path / "opsrun-lab" / "web1"
    for sub in ("payload", "payload/system.slice/console-getty.service"):
        (top / sub).mkdir(parents=True)
        (top / sub / "cgroup.procs").write_text("41\n" if sub == "payload" else "42\n")
    monkeypatch.setattr(hosts, "cgroup_dirs", lambda _cfg, _name: [top])
    scandir = os.scandir

    def racing(path):  # the cgroup is removed between being listed and being read
        if str(path).endswith("console-getty.service"):
            shutil.rmtree(path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", racing)
    assert hosts.cgroup_pids(LabConfig(tmp_path / "lab", tmp_path / "cache"), "web1") == {41}


def run_supervisor(tmp_path: Path, monkeypatch, exits: list[str]) -> list[str]:
    """The real supervisor script, with a systemd-nspawn on PATH that exits with each of `exits` in turn
    (the last one for ever after; "stop 133": `stop()` asked while it ran, then 133); the supervisor.log
    lines it wrote. It leaves no pid file, nor the stop request, behind."""
    monkeypatch.setattr(hosts, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(hosts, "BOOT_RETRIES", 2)
    (tmp_path / "cgroup").mkdir()
    (tmp_path / "cgroup/cgroup.controllers").write_text("")
    cfg = LabConfig(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    hdir = cfg.host_dir("web1")
    hdir.mkdir(parents=True)
    bin_dir, codes = tmp_path / "bin", tmp_path / "codes"
    bin_dir.mkdir()
    codes.write_text("".join(f"{c}\n" for c in exits))
    fake = bin_dir / "systemd-nspawn"
    fake.write_text(
        f"#!/bin/sh\nc=$(head -n1 {codes}); [ $(wc -l < {codes}) -gt 1 ] && sed -i 1d {codes}\n"
        f'case $c in stop*) touch {hdir}/stopping; c=${{c#stop }} ;; esac\nexit "$c"\n'
    )
    fake.chmod(0o755)
    script = hosts.supervisor_script(cfg, tmp_path / "base", "web1")
    subprocess.run(["sh", "-c", script], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=True, timeout=30)
    assert sorted(p.name for p in hdir.iterdir()) == ["console.log", "supervisor.log"]
    return [line.split(" ", 1)[1] for line in (hdir / "supervisor.log").read_text().splitlines()]


def test_the_supervisor_boots_a_host_again_after_a_reboot_and_after_a_failed_boot(tmp_path, monkeypatch):
    log = run_supervisor(tmp_path, monkeypatch, ["133", "1", "133", "255", "0"])
    assert log == [
        "nspawn exited 133",
        "nspawn exited 1",
        "booting again (1 of 2)",
        "nspawn exited 133",
        "nspawn exited 255",
        "booting again (1 of 2)",  # a reboot that worked started the count again
        "nspawn exited 0",  # a poweroff: the host stays off
    ]


def test_the_supervisor_leaves_a_host_that_fails_to_boot_off_after_its_retries(tmp_path, monkeypatch):
    log = run_supervisor(tmp_path, monkeypatch, ["1"])
    assert log == [
        "nspawn exited 1",
        "booting again (1 of 2)",
        "nspawn exited 1",
        "booting again (2 of 2)",
        "nspawn exited 1",
    ]


def test_the_supervisor_never_boots_again_an_nspawn_killed_by_a_signal(tmp_path, monkeypatch):
    assert run_supervisor(tmp_path, monkeypatch, ["137"]) == ["nspawn exited 137"]  # its container may run on


@pytest.mark.parametrize("exit_code", ["133", "1"])
def test_the_supervisor_boots_no_host_that_is_being_stopped(tmp_path, monkeypatch, exit_code):
    assert run_supervisor(tmp_path, monkeypatch, [f"stop {exit_code}", "0"]) == [f"nspawn exited {exit_code}"]


def test_up_powers_a_host_that_does_not_come_up_off_and_boots_it_once_more(tmp_path, monkeypatch):
    cfg = LabConfig(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    cfg.host_dir("web2").mkdir(parents=True)
    calls: list[str] = []
    answers = iter([LabError("timed out after 90s waiting for sshd on lab host web2\n  trace"), "running"])

    def wait_ready(_cfg, name, _address):
        calls.append(f"wait {name}")
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(hosts, "wait_ready", wait_ready)
    monkeypatch.setattr(hosts, "stop", lambda _cfg, name: calls.append(f"stop {name}"))
    monkeypatch.setattr(hosts, "start", lambda _cfg, _base, name: calls.append(f"start {name}"))
    said: list[str] = []
    assert lab_module.Lab(cfg)._ready(tmp_path / "base", "web2", "10.0.0.2", said.append) == "running"
    assert calls == ["wait web2", "stop web2", "start web2", "wait web2"]
    assert said == ["web2 did not come up (timed out after 90s waiting for sshd on lab host web2): "
                    "powering it off and booting it again"]  # fmt: skip
    assert "opsrun lab up: web2 did not come up" in (cfg.host_dir("web2") / "supervisor.log").read_text()


def test_a_host_that_does_not_come_up_is_reported_with_its_boot_trace(tmp_path, monkeypatch):
    cfg = LabConfig(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    cfg.host_dir("web2").mkdir(parents=True)
    (cfg.host_dir("web2") / "console.log").write_text("Failed to allocate manager object: Too many open files\n")
    monkeypatch.setattr(hosts, "port_open", lambda _address: False)
    with pytest.raises(LabError) as err:
        hosts.wait_ready(cfg, "web2", "10.0.0.2", timeout=0.3)
    assert "timed out after 0.3s waiting for sshd on lab host web2" in str(err.value)
    assert "Too many open files" in str(err.value) and "inotify instances" in str(err.value)

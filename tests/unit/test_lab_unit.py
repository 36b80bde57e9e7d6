"""Pure parts of the lab: prerequisites, apt sources, recipe hashing, per-host files."""

from __future__ import annotations

import shutil
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

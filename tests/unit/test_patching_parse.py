"""The patching deploy's pure parts, on `apt-get -s dist-upgrade` output recorded in the lab (tests/data/apt/)."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the deploys are ops content, imported as pyinfra's CLI does: from the repo root

from deploys._ops import PendingUpgrades, chosen_upgrades  # noqa: E402

DATA = REPO / "tests" / "data" / "apt"
SECURITY = "Inst libc6 [2.36-9+deb12u7] (2.36-9+deb12u8 Debian-Security:12/stable-security [amd64]) []"


def parse(text: str):
    return PendingUpgrades().process(text.splitlines())


def test_one_pending_upgrade():
    assert parse((DATA / "simulate-one-upgrade.txt").read_text()) == [
        {"package": "opsrun-demo", "from": "1.0", "to": "9.9", "origin": "opsrun-lab:lab"}
    ]


def test_held_packages_are_kept_back_and_not_pending():
    assert parse((DATA / "simulate-held.txt").read_text()) == []


def test_security_line_and_a_new_dependency():
    pending = parse(f"{SECURITY}\nInst libnew1 (1.2-1 Debian:12.8/stable [amd64])\n")
    assert pending == [
        {
            "package": "libc6",
            "from": "2.36-9+deb12u7",
            "to": "2.36-9+deb12u8",
            "origin": "Debian-Security:12/stable-security",
        },
        {"package": "libnew1", "from": None, "to": "1.2-1", "origin": "Debian:12.8/stable"},
    ]


@pytest.mark.parametrize(
    ("mode", "origins", "expected"),
    [
        ("all", [], ["libc6", "opsrun-demo"]),
        ("origins", ["Debian-Security:*"], ["libc6"]),
        ("origins", ["opsrun-lab:*"], ["opsrun-demo"]),
        ("origins", [], []),
    ],
)
def test_upgrades_chosen_by_origin(mode, origins, expected):
    pending = parse(SECURITY + "\n" + (DATA / "simulate-one-upgrade.txt").read_text())
    assert [p["package"] for p in chosen_upgrades(pending, mode, origins)] == expected

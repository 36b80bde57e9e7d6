"""contrib/systemd: the nightly drift and monthly DR-test units pass `systemd-analyze verify` on this
machine too (offline, from a unit path of their own); the lab test runs the same inside a real systemd."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

UNITS = sorted(p.name for p in (REPO / "contrib" / "systemd").iterdir())
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")


def verify(folder, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *units],
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{folder}:"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_units_are_the_drift_and_dr_test_pairs():
    assert UNITS == [
        "opsrun-dr-test@.service",
        "opsrun-dr-test@.timer",
        "opsrun-drift@.service",
        "opsrun-drift@.timer",
    ]


def test_units_pass_systemd_analyze_verify(tmp_path):
    for unit in UNITS:
        shutil.copy(REPO / "contrib" / "systemd" / unit, tmp_path / unit)
    good = verify(tmp_path, *(u.replace("@.", "@production.") for u in UNITS))
    assert (good.returncode, good.stdout + good.stderr) == (0, "")
    (tmp_path / "bad@.timer").write_text("[Timer]\nOnCalendar=monthly-ish\n")
    bad = verify(tmp_path, "bad@x.timer")
    assert bad.returncode != 0 and "calendar" in bad.stderr


def test_dr_test_reports_are_kept_per_month_under_one_folder():
    service = (REPO / "contrib" / "systemd" / "opsrun-dr-test@.service").read_text()
    assert "opsrun dr-test %i --out /var/lib/opsrun/reports/%i/dr-test $OPSRUN_DR_ARGS" in service
    timer = (REPO / "contrib" / "systemd" / "opsrun-dr-test@.timer").read_text()
    assert "OnCalendar=Tue *-*-01..07 10:00:00" in timer and "Persistent=true" in timer


def test_both_services_read_the_shared_notify_env_before_their_own():
    """The PagerDuty routing key lives in one file for the nightly drift run and the monthly DR test."""
    for service, own in (("opsrun-drift@.service", "drift.env"), ("opsrun-dr-test@.service", "dr-test.env")):
        lines = (REPO / "contrib" / "systemd" / service).read_text().splitlines()
        files = [line for line in lines if line.startswith("EnvironmentFile=")]
        assert files == ["EnvironmentFile=-/etc/opsrun/notify.env", f"EnvironmentFile=-/etc/opsrun/{own}"]

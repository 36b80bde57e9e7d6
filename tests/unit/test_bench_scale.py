"""bench/scale.py's pure parts: the median, the process-tree memory sum, the /proc stat parser, the table.
The benchmark itself runs by hand on the lab; here it must at least import and compute right."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
try:
    import scale
    from rolling import outside_waits, split
finally:
    sys.path.remove(str(BENCH))


def test_median_of_odd_and_even_runs_and_none():
    assert scale.median([3.0, 1.0, 2.0]) == 2.0
    assert scale.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError, match="no runs"):
        scale.median([])


def test_runs_are_five_below_a_hundred_hosts_and_three_from_there():
    assert [scale.runs_for(n) for n in (12, 50, 99, 100, 200)] == [5, 5, 5, 3, 3]


def test_tree_rss_sums_a_process_and_all_its_descendants_only():
    procs = {1: (0, 1000), 10: (1, 100), 11: (10, 20), 12: (10, 30), 13: (12, 5), 20: (1, 999)}
    assert scale.tree_rss_kib(10, procs) == 155
    assert scale.tree_rss_kib(13, procs) == 5
    assert scale.tree_rss_kib(99, procs) == 0


def test_stat_parser_reads_ppid_and_rss_past_a_name_with_spaces_and_parentheses():
    fields = ["S", "42"] + ["0"] * 19 + ["250"] + ["0"] * 20  # rss is the 24th field: 250 pages
    text = "1234 (python3 (worker) x) " + " ".join(fields)
    assert scale.parse_stat(text) == (42, 250 * scale.PAGE_KIB)


def test_rolling_share_outside_waits_counts_verify_and_the_rest():
    doc = {
        "seconds": 100.0,
        "stage_seconds": {"connect": 2, "apply": 40, "drain": 10, "reboot": 20, "health": 10, "verify": 6, "enable": 8},
    }
    assert dict(split(doc))["opsrun overhead (the rest)"] == pytest.approx(4.0)
    assert outside_waits(doc) == pytest.approx(0.10)  # verify 6 + the rest 4


def test_table_has_a_column_per_size_ratios_and_targets():
    def size(n: int, opsrun: float, pyinfra: float) -> scale.Size:
        seconds = {"opsrun": opsrun, "pyinfra": pyinfra, "verify": 1.2, "verify_one": 1.0, "drift": 4.0}
        seconds |= {"dry": 2.0, "drift3": 2.5, "dry3": 1.6}
        boot = {"new_hosts": n, "boot_seconds": 6.04, "mib_per_host": 10.5, "inotify_instances_per_host": 6.2}
        boot |= {"inotify_watches_per_host": 80.0}
        peaks = {w: scale.Peak(97.4, 61.0) for w in ("apply", "verify", "drift")}
        rolling = {"wall": 95.0, "outside": 0.083, "requests": 20000, "failed": 0, "ok": 1.0}
        return scale.Size(n, boot, seconds, scale.runs_for(n), rolling, peaks)

    text = scale.table([size(12, 1.92, 1.64), size(100, 7.29, 7.07)])
    lines = text.splitlines()
    assert lines[0] == "| measure | 12 hosts | 100 hosts | target |"
    assert lines[1] == "|---|---|---|---|"
    assert "| **ratio opsrun / pyinfra** | 1.17 | 1.03 | ≤ 1.10 |" in lines
    assert "| **ratio verify all / one** | 1.20 | 1.20 | ≤ 1.3 at 12 |" in lines
    assert "| **drift growth from 3 hosts** | 1.60 | 1.60 | ≤ 1.5 at 12 |" in lines
    assert "| **share outside pyinfra, drain, reboot, health waits** | 8.3% | 8.3% | ≤ 10 % |" in lines
    assert "| requests through HAProxy: failed / sent | 0 / 20000 | 0 / 20000 | 0 failed |" in lines
    assert (
        "| peak RSS, apply: opsrun + workers (largest process) | 97 MiB (61 MiB) | 97 MiB (61 MiB) | reported |"
        in lines
    )
    assert "| lab: memory per booted host (MemAvailable drop) | 10.5 MiB | 10.5 MiB |  |" in lines
    assert all(line.count("|") == 5 for line in lines if line.startswith("|"))
    assert lines[-1] == "Medians of 5 at 12 hosts, 3 at 100 hosts; ratios measured side by side in one run."


def test_table_says_when_a_rollout_failed_or_was_not_run():
    s = scale.Size(12, {}, {"opsrun": 1.0, "pyinfra": 1.0, "verify": 1.0, "verify_one": 1.0, "drift": 1.0}, 5)
    s.seconds |= {"dry": 1.0, "drift3": 1.0, "dry3": 1.0}
    assert "| rolling `patching`, `--serial 25%`: wall | - |  |" in scale.table([s]).splitlines()
    s.rolling = {"wall": 9.0, "outside": 0.5, "requests": 10, "failed": 3, "ok": 0.0}
    assert "| rolling `patching`, `--serial 25%`: wall | 9.0 s (rollout failed) |  |" in scale.table([s]).splitlines()


def test_floor_rows_divide_all_the_cpu_by_the_cores_and_the_smaller_runs_wall(monkeypatch):
    monkeypatch.setattr(scale.os, "cpu_count", lambda: 2)
    s = scale.Size(12, {}, {"verify": 2.0, "verify_one": 1.0, "drift": 3.0, "drift3": 2.0}, 5)
    s.cpu = {"verify": scale.Cpu(1.2, 1.8), "drift": scale.Cpu(2.0, 4.0)}
    lines = scale.table([s]).splitlines()
    assert "| floor of the ratio here: all hosts' CPU ÷ cores ÷ web1's wall | 1.50 | reported |" in lines
    assert "| floor of the growth here: all hosts' drift CPU ÷ cores ÷ 3 hosts' wall | 1.50 | reported |" in lines
    assert "| drift CPU, web1..web3: opsrun + workers + ssh / the lab hosts' own | - |  |" in lines


def test_pss_is_read_from_smaps_rollup_and_a_gone_process_counts_nothing():
    text = "55cc-7ffc ---p 00000000 00:00 0   [rollup]\nRss:   1608 kB\nPss:    213 kB\nPss_Dirty:  116 kB\n"
    assert scale.parse_pss(text) == 213
    assert scale.pss_kib(os.getpid()) > 0
    assert scale.pss_kib(2**22 + 1) == 0  # above pid_max's default: no such process
    s = scale.Size(12, {}, {}, 5, peaks={"verify": scale.Peak(476.0, 41.0, 120.4), "apply": scale.Peak(97.0, 61.0)})
    lines = scale.table([s]).splitlines()
    assert "| peak PSS, verify: opsrun + workers (shared pages once) | 120 MiB | reported |" in lines
    assert "| peak PSS, apply: opsrun + workers (shared pages once) | - | reported |" in lines

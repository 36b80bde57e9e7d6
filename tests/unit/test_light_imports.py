"""`import opsrun.cli` (every command line starts with it) loads neither the lab, nor testinfra, nor pyinfra:
the lab is for `opsrun lab`, testinfra for the verification backend in the suite's own pytest, pyinfra for
the engine's worker process."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("opsrun.lab", "testinfra", "pyinfra", "pyinfra_cli")


def test_the_command_line_imports_no_lab_no_testinfra_and_no_pyinfra():
    script = "import json, sys, opsrun.cli; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)] == []

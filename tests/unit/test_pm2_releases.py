"""The PM2 deploy's releases, pure parts: a release's name from the app's files, and the releases a host
keeps (deploys/_ops.py). The switch itself is proved on the lab (tests/lab/test_rollback.py)."""

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the deploys are ops content, imported as pyinfra's CLI does: from the repo root

from deploys._ops import AppReleases, release_of  # noqa: E402


def test_a_release_is_named_by_the_apps_code(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(REPO / "apps" / "demo", app)
    same = release_of(app)
    assert same == release_of(REPO / "apps" / "demo") and len(same) == 12
    (app / "server.js").write_text((app / "server.js").read_text() + "// a change\n")
    changed = release_of(app)
    assert changed != same
    (app / "server.js").rename(app / "main.js")  # the same bytes under another name: another release
    assert release_of(app) != changed


def test_the_releases_a_host_keeps_and_the_current_one():
    fact = AppReleases()
    assert fact.process(["0123456789ab", "ba9876543210", "--", "releases/ba9876543210"]) == {
        "releases": ["0123456789ab", "ba9876543210"],
        "current": "ba9876543210",
    }
    assert fact.process(["--"]) == {"releases": [], "current": None}  # an app deployed before releases
    assert "'/opt/my app/releases'" in fact.command("/opt/my app")

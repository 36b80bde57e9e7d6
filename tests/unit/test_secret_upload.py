"""deploys/_ops.secret_file: no copy of a secret is ever readable by another user of the host, at any step of
its upload (issue 11, item 6).

The operation's commands run here, on a folder standing in for the host's file system. Shell commands run with
`sh`; an upload is made as pyinfra's SSH connector makes it over SFTP: the file is created (or truncated) at the
remote path by sftp-server, whose umask is the system's (022), so a new file is 0644. After every step, every
file holding the secret is checked: either its mode keeps others out, or a folder on its way does.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyinfra.api import FileUploadCommand, StringCommand

from deploys import _ops

SECRET = "upload-secret-" + "x" * 16


class FakeHost:
    """What secret_file asks of pyinfra's `host`: no file there yet, not a dry run."""

    state = SimpleNamespace(config=SimpleNamespace(DIFF=False))

    def get_fact(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def get_temp_filename(self, key: str) -> str:
        return f"/tmp/pyinfra-{abs(hash(key))}"  # what pyinfra uses with sudo; never without

    def noop(self, _message: str) -> None:
        pass

    def log(self, *_args: Any) -> None:
        pass


def sftp_put(command: FileUploadCommand) -> None:
    """paramiko's putfo as sftp-server serves it: open(path, O_CREAT|O_TRUNC, 0666) under umask 022."""
    data = command.src.read()
    old = os.umask(0o022)
    try:
        fd = os.open(command.dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    finally:
        os.umask(old)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def readable_by_others(path: Path, root: Path) -> bool:
    """Another user can read `path`: it is o+r and every folder from `root` down to it is o+x."""
    if not stat.S_IMODE(path.stat().st_mode) & stat.S_IROTH:
        return False
    return all(stat.S_IMODE(p.stat().st_mode) & stat.S_IXOTH for p in path.parents if p.is_relative_to(root))


def leaks(root: Path) -> list[str]:
    return [
        f"{p.relative_to(root)} {oct(stat.S_IMODE(p.stat().st_mode))}"
        for p in root.rglob("*")
        if p.is_file() and SECRET.encode() in p.read_bytes() and readable_by_others(p, root)
    ]


@pytest.mark.parametrize("existing", [None, 0o600], ids=["first-upload", "replacing"])
def test_no_step_of_a_secret_upload_leaves_it_readable_by_others(existing, tmp_path, monkeypatch):
    root = tmp_path / "host"
    (root / "etc" / "opsrun" / "pm2").mkdir(parents=True)
    (root / "var" / "lib").mkdir(parents=True)
    for folder in (root, root / "etc", root / "etc" / "opsrun", root / "etc" / "opsrun" / "pm2", root / "var"):
        folder.chmod(0o755)  # as on a host: /etc and its folders are open to everyone
    dest = root / "etc" / "opsrun" / "pm2" / "demo.secrets.json"
    if existing is not None:
        dest.write_text("{}")
        dest.chmod(existing)
    monkeypatch.setattr(_ops, "host", FakeHost())
    stage = str(root / "var" / "lib" / "opsrun" / "secret-upload")
    monkeypatch.setattr(_ops, "SECRET_STAGING", stage, raising=False)  # main had none

    steps = []
    for command in _ops.secret_file._inner(dest=str(dest), content=f'{{"API_TOKEN": "{SECRET}"}}'):
        if isinstance(command, FileUploadCommand):
            sftp_put(command)
        else:
            text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
            subprocess.run(["sh", "-c", text], check=True)
        steps.append(command)
        assert leaks(root) == [], f"after {command!r}"
    assert dest.read_text() == f'{{"API_TOKEN": "{SECRET}"}}'
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    [upload] = [c for c in steps if isinstance(c, FileUploadCommand)]
    # with _sudo, pyinfra would upload to remote_temp_filename first: that too stays in the 700 folder
    assert Path(upload.dest).parent == Path(upload.remote_temp_filename).parent == Path(stage)
    assert stat.S_IMODE(Path(stage).stat().st_mode) == 0o700

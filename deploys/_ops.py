"""Operations and helpers shared by the deploys. Plain pyinfra, imported as `deploys._ops`."""

from __future__ import annotations

import hashlib
import io
import shlex
from collections.abc import Generator
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import Sha1File

TEMPLATES = Path(__file__).parent / "templates"
STAGING = "/var/lib/opsrun/config-swap"
_jinja = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - config files, not HTML


def render(template: str, **values: Any) -> str:
    """Render deploys/templates/TEMPLATE with `values`; a missing value is an error, never an empty string."""
    return _jinja.get_template(template).render(**values)


@operation()
def config_files(files: dict[str, str], check: str, mode: str = "644") -> Generator[Any, None, None]:
    """Install configuration files together and keep them only if `check` passes with them in place.

    Files whose content differs are staged, swapped in, and `check` runs (`nginx -t`). If it fails, every
    swapped file is put back as it was and the operation fails with the check's output: a bad
    configuration is never left on disk for the next restart to find, and the running service, never
    reloaded, keeps serving the old one. Nothing is yielded when every file matches.
    """
    changed = [
        dest
        for dest, text in files.items()
        if host.get_fact(Sha1File, path=dest) != hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a checksum
    ]
    if not changed:
        host.noop(f"{len(files)} configuration files already as desired")
        return
    # New and old copies wait in a folder of their own: inside an include dir (sites-enabled/*) they
    # would be read by the very check that is meant to judge the new files.
    q = shlex.quote
    staged = {d: q(f"{STAGING}/{d.strip('/').replace('/', '%')}") for d in changed}
    yield f"mkdir -p -m 700 {STAGING}"
    for dest in changed:
        yield FileUploadCommand(
            io.BytesIO(files[dest].encode()),
            f"{STAGING}/{dest.strip('/').replace('/', '%')}.new",
            remote_temp_filename=host.get_temp_filename(dest),
        )
    swap = [
        f"if [ -e {q(d)} ]; then cp -p {q(d)} {staged[d]}.old; else rm -f {staged[d]}.old; fi; "
        f"chmod {mode} {staged[d]}.new; mv -f {staged[d]}.new {q(d)}"
        for d in changed
    ]
    restore = [f"if [ -e {staged[d]}.old ]; then mv -f {staged[d]}.old {q(d)}; else rm -f {q(d)}; fi" for d in changed]
    yield "; ".join(
        [
            *swap,
            f"if ! {check}; then {'; '.join(restore)}; "
            f"echo 'opsrun: `{check}` failed: the previous configuration was put back' >&2; exit 1; fi",
            "rm -f " + " ".join(f"{staged[d]}.old" for d in changed),
        ]
    )

"""The generated pages of the docs site: the command reference (read from the click command tree), the
settings reference (read from the pydantic schemas) and the JSON Schema of a run's document (read from its
models, opsrun.model.documents), so none can drift from the code.

    python -m opsrun.docgen            write them (`make reference`), from the repository's root
    python -m opsrun.docgen --check    exit 1 naming each page that is out of date

Not imported by the `opsrun` command itself.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

COMMAND = "make reference"  # or: python -m opsrun.docgen


def _cli_page() -> str:
    from opsrun.cli import cli
    from opsrun.docgen import cli_ref

    return cli_ref.page(cli)


def _settings_page() -> str:
    from opsrun.docgen import settings_ref

    return settings_ref.page()


def _document_schema() -> str:
    from opsrun.model import documents

    return json.dumps(documents.schema(), indent=2) + "\n"


#: page (relative to the repository's root) -> what renders it
PAGES: dict[str, Callable[[], str]] = {
    "docs/reference/cli.md": _cli_page,
    "docs/reference/settings.md": _settings_page,
    "docs/reference/run-document.schema.json": _document_schema,
}


def stale(root: Path) -> list[str]:
    """The pages under `root` whose text is not what the code renders now."""
    out = []
    for page, render in PAGES.items():
        path = root / page
        if not path.is_file() or path.read_text() != render():
            out.append(page)
    return out


def write(root: Path) -> list[str]:
    """Write every page that changed; the pages written."""
    changed = stale(root)
    for page in changed:
        path = root / page
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAGES[page]())
    return changed


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsrun.docgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date; write nothing")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    opts = parser.parse_args(args)
    if not (opts.root / "mkdocs.yml").is_file():
        print(f"error: {opts.root}: no mkdocs.yml here. Fix: run from the repository's root, or give --root")
        return 2
    if opts.check:
        pages = stale(opts.root)
        for page in pages:
            print(f"{page} is out of date. Fix: {COMMAND}")
        return 1 if pages else 0
    for page in write(opts.root):
        print(f"wrote {page}")
    return 0

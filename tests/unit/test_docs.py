"""The docs: a README a newcomer reads in two minutes, a site whose every page is in its nav, and the two
generated references (commands, settings) that name every command, option and setting as the code has them
and cannot fall out of date. (`make docs` builds the site itself, strict, in `make test`.)"""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from opsrun import docgen
from opsrun.cli import cli
from opsrun.docgen import cli_ref, markdown, settings_ref
from opsrun.settings import SUDO_KEYS, models
from tests.conftest import REPO

DOCS = REPO / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def nav_pages(nav: list[object]) -> list[str]:
    out: list[str] = []
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            out += nav_pages(value) if isinstance(value, list) else [str(value)]
    return out


def section(page: str, heading: str) -> str:
    """The text under `heading` (a `## ` line) up to the next `## ` heading."""
    start = page.index(f"\n{heading}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end > 0 else None]


def test_the_readme_is_at_most_150_lines():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move the detail into docs/"


def test_the_readme_keeps_the_two_commands_and_what_was_not_checked():
    readme = (REPO / "README.md").read_text()
    assert "\nmake demo    #" in readme and "\nmake test    #" in readme
    real = section(readme, "## What was checked against the real thing, and what was not")
    assert "moto" in real and "stand-in" in real and "(docs/what-is-real.md)" in real


def test_every_link_of_the_readme_reaches_a_file():
    readme = (REPO / "README.md").read_text()
    targets = [m[1] for m in LINK.finditer(readme) if not m[1].startswith(("http://", "https://"))]
    assert targets, "the README links into the docs"
    assert [t for t in targets if not (REPO / t).exists()] == []


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    assert config["strict"] is True


def test_the_benchmark_page_is_bench_results_as_it_is():
    assert (DOCS / "benchmarks.md").read_text() == '--8<-- "bench/RESULTS.md"\n'
    results = (REPO / "bench" / "RESULTS.md").read_text()
    for script in sorted((REPO / "bench").glob("*.py")):
        assert f"bench/{script.name}" in results, f"bench/RESULTS.md has no figure of {script.name}"


@pytest.mark.parametrize("page", sorted(docgen.PAGES))
def test_the_generated_page_is_up_to_date(page):
    assert page not in docgen.stale(REPO), f"{page} is out of date: run `{docgen.COMMAND}` and commit it"


def test_the_command_reference_names_every_command_and_option():
    page = (DOCS / "reference" / "cli.md").read_text()
    found = cli_ref.commands(cli)
    assert {"opsrun apply", "opsrun drift", "opsrun history show", "opsrun lab up"} <= set(found)
    for command, options in found.items():
        text = section(page, f"## {command}")
        missing = [opt for opt in options if not re.search(rf"`[^`]*{re.escape(opt)}\b", text)]
        assert missing == [], f"{command}: {missing} not in its section of reference/cli.md"


def test_the_command_reference_leaves_hidden_options_out():
    assert "--fail-on-unreachable" not in (DOCS / "reference" / "cli.md").read_text()


def test_the_settings_reference_names_every_setting_and_field():
    page = (DOCS / "reference" / "settings.md").read_text()
    missing = [key for key in settings_ref.keys() if f"`{key}`" not in page and f".{key}`" not in page]
    assert missing == []
    for family in ("pm2_apps", "rolling.serial", "balancer.target_group", "dr.postgres", "redis_cluster_auth"):
        assert f"`{family}`" in page


def test_every_settings_model_has_its_section_in_the_settings_reference():
    """A schema added to opsrun.settings.models shows up here until the page documents it (the `...Setting`
    wrappers only validate one key: their model is the documented one)."""
    page = (DOCS / "reference" / "settings.md").read_text()
    names = [n for n in models.__all__ if isinstance(getattr(models, n), type) and not n.endswith("Setting")]
    assert "SudoSettings" in names
    assert [n for n in names if f"{{#{n.lower()}}}" not in page] == []
    assert set(settings_ref.documented_models()) >= {getattr(models, n) for n in names}


def test_every_group_data_key_of_the_repository_is_in_the_settings_reference():
    page = (DOCS / "reference" / "settings.md").read_text()
    keys = set()
    for path in sorted((REPO / "group_data").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                keys |= {n for n in names if not n.startswith("_") or n in SUDO_KEYS}  # _x: a file's own helper
    assert {"rolling", "nginx_worker_processes", "aws_checks"} <= keys
    policy = {k for k in keys if k.endswith(("_rolling", "_balancer"))}  # DEPLOY_rolling, DEPLOY_balancer
    assert sorted(k for k in keys - policy if f"`{k}`" not in page) == []
    assert "`DEPLOY_rolling`" in page and "`DEPLOY_balancer`" in page


def test_markdown_escapes_text_but_not_code_spans():
    assert markdown.escape("globs (web*), `a|b*` [x]") == r"globs (web\*), `a|b*` \[x\]"
    assert markdown.cell("one\n  line | two") == r"one line \| two"

from __future__ import annotations

from pathlib import Path

import pytest

from opsrun.errors import ConfigError
from opsrun.model import inventory
from opsrun.model.project import Project


def make_project(tmp_path: Path, inv: str, **group_data: str) -> Project:
    (tmp_path / "inventories").mkdir()
    (tmp_path / "deploys").mkdir()
    (tmp_path / "group_data").mkdir()
    (tmp_path / "inventories" / "prod.py").write_text(inv)
    for name, text in group_data.items():
        (tmp_path / "group_data" / f"{name}.py").write_text(text)
    return Project(tmp_path)


INV = """
import os
web = [("web-1", {"ssh_hostname": "192.0.2.11", "role": "primary"}), "web-2"]
db = (["db-1"], {"port": 5432, "role": "db"})
_private = ["ignored-1"]
not_a_group = 42
"""


def test_groups_follow_pyinfra_rules(tmp_path):
    inv = inventory.load(make_project(tmp_path, INV), "prod")
    assert list(inv.hosts) == ["web-1", "web-2", "db-1"]
    assert set(inv.groups) == {"web", "db", "prod"}  # the file's stem is a group of every host
    assert inv.hosts["web-1"].groups == ("web", "prod")
    assert "ignored-1" not in inv.hosts


def test_data_precedence_host_over_group_over_all(tmp_path):
    project = make_project(
        tmp_path,
        INV,
        all='role = "any"\nntp = "pool"\n',
        web='role = "web"\nworkers = 4\n',
        prod="workers = 8\n",
    )
    inv = inventory.load(project, "prod")
    web1, web2, db1 = (inv.hosts[n].data for n in ("web-1", "web-2", "db-1"))
    assert web1["role"] == "primary"  # host data wins
    assert web2["role"] == "web"  # then group data
    assert db1["role"] == "db"  # group data given in the inventory tuple
    assert web2["ntp"] == db1["ntp"] == "pool"  # then all
    assert web2["workers"] == 8  # a later group (the file group) wins over an earlier one
    assert web1["ssh_hostname"] == "192.0.2.11"


def test_imported_names_are_not_group_data(tmp_path):
    project = make_project(tmp_path, INV, web="import os\nfrom pathlib import Path\nworkers = 2\n")
    data = inventory.load(project, "prod").hosts["web-2"].data
    assert data["workers"] == 2
    assert "os" not in data and "Path" not in data


def test_group_data_for_group_without_hosts_is_kept(tmp_path):
    inv = inventory.load(make_project(tmp_path, INV, redis="port = 7000\n"), "prod")
    assert inv.groups["redis"] == ([], {"port": 7000})


def test_syntax_error_in_group_data_names_file_and_line(tmp_path):
    project = make_project(tmp_path, INV, web="workers = \n")
    with pytest.raises(ConfigError) as err:
        inventory.load(project, "prod")
    assert str(err.value).startswith(str(tmp_path / "group_data" / "web.py") + ": line 1: syntax error")
    assert err.value.exit_code == 2


def test_exception_in_inventory_names_file(tmp_path):
    project = make_project(tmp_path, "web = [undefined_name]\n")
    with pytest.raises(ConfigError, match=r"prod\.py: raised NameError: name 'undefined_name' is not defined"):
        inventory.load(project, "prod")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("web = [42]\n", "web"),
        ('web = (["a"], "not a dict")\n', "web"),
        ('web = [("a", "not a dict")]\n', "web"),
    ],
)
def test_invalid_group_is_reported_with_its_name(tmp_path, text, field):
    with pytest.raises(ConfigError) as err:
        inventory.load(make_project(tmp_path, text), "prod")
    assert err.value.field == field
    assert err.value.fix


def test_inventory_without_hosts_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="defines no hosts"):
        inventory.load(make_project(tmp_path, "x = 1\n"), "prod")


def test_missing_inventory_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError) as err:
        inventory.load(make_project(tmp_path, INV), "production")
    assert str(err.value) == (
        f"{tmp_path}/inventories/production.py: no inventory named 'production'. Fix: use one of: prod"
    )


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, ["web-1", "web-2", "db-1"]),
        ("web-2", ["web-2"]),
        ("web", ["web-1", "web-2"]),
        ("db-1,web-1", ["web-1", "db-1"]),  # inventory order, whatever the order asked
        ("web-*", ["web-1", "web-2"]),
        ("web,web-1", ["web-1", "web-2"]),
    ],
)
def test_limit_selects_hosts_groups_and_globs(tmp_path, limit, expected):
    assert inventory.load(make_project(tmp_path, INV), "prod").select(limit) == expected


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (["web-*,!web-2"], ["web-1"]),  # a glob, less a host
        (["web:!web-2"], ["web-1"]),  # ":" joins terms as "," does
        (["!db-1"], ["web-1", "web-2"]),  # only exclusions: from every host
        (["prod:&db"], ["db-1"]),  # intersection
        (["&web"], ["web-1", "web-2"]),
        (["all"], ["web-1", "web-2", "db-1"]),
        (["*"], ["web-1", "web-2", "db-1"]),
        (["w*"], ["web-1", "web-2"]),  # a glob over group names too
        (["d?"], ["db-1"]),
        (["~^web-[12]$"], ["web-1", "web-2"]),  # a regular expression
        (["web-1", "db-1"], ["web-1", "db-1"]),  # repeated --limit: a union
        (["web", "!web-1"], ["web-2"]),  # ... of terms, so a later one may exclude
        (["!web-1,web"], ["web-2"]),  # exclusions apply after the plain terms, wherever written
    ],
)
def test_limit_takes_host_patterns_as_ansible_writes_them(tmp_path, limits, expected):
    assert inventory.load(make_project(tmp_path, INV), "prod").select(limits) == expected


def test_limit_reads_at_file_one_pattern_a_line(tmp_path):
    inv = inventory.load(make_project(tmp_path, INV), "prod")
    listed = tmp_path / "retry.txt"
    listed.write_text("web-1\n# a comment\n\n  !web-2  \nd*\n")
    assert inv.select(f"@{listed}") == ["web-1", "db-1"]
    assert inv.select([f"@{listed}", "web-2"]) == ["web-1", "db-1"]  # !web-2 applies to the whole union


@pytest.mark.parametrize(
    ("limit", "problem"),
    [
        ("web-9", "'web-9' matches no host or group."),
        ("web,!web-9", "'web-9' matches no host or group."),  # a typo in an exclusion must not widen the run
        ("web:!web", "'web:!web' leaves no host."),
        ("redis", "'redis' matches no host or group (group redis has no hosts in prod)."),
        ("~web-[", "'~web-[' is not a regular expression"),
    ],
)
def test_limit_naming_nothing_is_an_error_listing_the_inventorys_own_groups(tmp_path, limit, problem):
    inv = inventory.load(make_project(tmp_path, INV, redis="port = 7000\n"), "prod")
    with pytest.raises(ConfigError) as err:
        inv.select(limit)
    assert err.value.field == "--limit" and err.value.path == str(tmp_path / "inventories" / "prod.py")
    assert err.value.problem.startswith(problem)
    if "regular expression" not in problem:
        # the groups the inventory puts hosts in, never a group_data file's group it lacks
        assert err.value.fix.startswith("name hosts (web-1, web-2, db-1), groups (web, db, prod) or patterns")


def test_limit_at_a_missing_file_names_the_file(tmp_path):
    inv = inventory.load(make_project(tmp_path, INV), "prod")
    with pytest.raises(ConfigError) as err:
        inv.select(f"@{tmp_path}/nosuch")
    assert (err.value.path, err.value.field) == (f"{tmp_path}/nosuch", "--limit")
    assert "No such file" in err.value.problem and err.value.fix


def test_where_names_the_file_a_value_comes_from(tmp_path):
    project = make_project(tmp_path, INV, all="rolling = {}\nntp = 1\n", web="rolling = {'serial': 1}\n")
    inv = inventory.load(project, "prod")
    assert inv.where("web-1", "rolling") == str(tmp_path / "group_data" / "web.py")
    assert inv.where("db-1", "rolling") == str(tmp_path / "group_data" / "all.py")
    assert inv.where("db-1", "port") == str(tmp_path / "inventories" / "prod.py")

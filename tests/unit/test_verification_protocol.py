"""The contract between the controller and the suite's pytest (opsrun.verification.protocol), and a
controller-scoped suite run for real: a pytest process on a suite written here."""

from pathlib import Path

import pytest

from opsrun.errors import ConfigError
from opsrun.model.inventory import Host, Inventory
from opsrun.model.project import Project
from opsrun.model.results import TestResult
from opsrun.verification import controller, protocol


def test_the_exit_codes_are_pytests_own():
    assert protocol.PYTEST_OK == pytest.ExitCode.OK
    assert protocol.PYTEST_TESTS_FAILED == pytest.ExitCode.TESTS_FAILED
    assert protocol.PYTEST_NO_TESTS_COLLECTED == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.parametrize(
    ("scope", "code", "outcomes", "failed"),
    [
        ("hosts", 0, ["passed"], False),
        ("hosts", 1, ["passed", "failed"], False),
        ("hosts", 1, ["passed"], True),  # "tests failed" with none failed: pytest's own failure
        ("hosts", 5, [], True),  # every host has tests; none collected is pytest's failure
        ("controller", 5, [], False),  # a controller suite may have nothing to run
        ("controller", 2, [], True),  # interrupted, or a usage error
        ("controller", 4, [], True),
    ],
)
def test_which_pytest_exits_mean_the_suite_ran(scope, code, outcomes, failed):
    results = [TestResult("web1", f"test_{i}", outcome) for i, outcome in enumerate(outcomes)]
    error = protocol.pytest_failure(code, scope, results, "line 1\nthe last line\n")
    assert (error is not None) == failed
    if failed:
        assert error == f"pytest exited {code}:\nline 1\nthe last line"


def test_a_result_line_written_by_the_plugin_reads_back_on_the_controller(tmp_path):
    path = tmp_path / "results-1.jsonl.101"
    protocol.write_result(
        str(path), host="web1", test="test_a[opsrun-ssh://web1-nginx]", outcome="failed", message="no", seconds=0.5
    )
    protocol.write_result(str(path), host="web1", test="(deadline)", outcome="error", message="timed out")
    got = protocol.read_results([path])
    assert got == [
        TestResult("web1", "test_a[nginx]", "failed", "no", 0.5),
        TestResult("web1", "(deadline)", "error", "timed out", 0.0),
    ]
    assert protocol.read_results([path], host="controller")[0] == TestResult(
        "controller", "test_a[opsrun-ssh://web1-nginx]", "failed", "no", 0.5
    )


def _suite(root: Path, tests: str) -> Project:
    for folder in ("inventories", "deploys", "verify/cloud"):
        (root / folder).mkdir(parents=True)
    (root / "verify/cloud/conftest.py").write_text('opsrun_scope = "controller"\n')
    (root / "verify/cloud/test_cloud.py").write_text(tests)
    return Project(root)


def _inventory(root: Path) -> Inventory:
    hosts = {"web1": Host("web1", ("web",), {"region": "eu-west-1", "db_password": "hidden"})}
    return Inventory("prod", root / "inventories/prod.py", ["web1"], {}, {"web": (["web1"], {})}, hosts)


def test_a_controller_suite_runs_once_with_the_inventory_data_and_its_results_under_controller(tmp_path):
    project = _suite(
        tmp_path,
        "def test_region(inventory_data):\n"
        "    assert inventory_data['data'] == {'region': 'eu-west-1'}\n"
        "def test_fails():\n"
        "    assert False, 'the load balancer has no healthy target'\n",
    )
    run = controller.run_suite(project, _inventory(tmp_path), "cloud", ["web1"], 60)
    assert run.error is None
    assert [(r.host, r.test, r.outcome) for r in run.results] == [
        ("controller", "test_region", "passed"),
        ("controller", "test_fails", "failed"),
    ]
    assert "no healthy target" in str(run.results[1].message)


def test_a_controller_suite_with_no_test_is_not_pytests_failure(tmp_path):
    project = _suite(tmp_path, "")
    run = controller.run_suite(project, _inventory(tmp_path), "cloud", ["web1"], 60)
    assert (run.error, run.results) == (None, [])


def test_a_controller_suite_past_its_deadline_is_ended_and_says_so(tmp_path):
    project = _suite(tmp_path, "import time\ndef test_hangs():\n    time.sleep(120)\n")
    run = controller.run_suite(project, _inventory(tmp_path), "cloud", ["web1"], 2)
    assert run.error is not None and run.error.startswith("timed out after 2s")
    assert run.seconds < 30


def test_a_suite_runs_on_the_hosts_unless_its_conftest_says_controller(tmp_path):
    project = _suite(tmp_path, "")
    (tmp_path / "verify/web").mkdir()
    assert controller.scope_of(tmp_path / "verify/web") == "hosts"
    assert controller.scope_of(tmp_path / "verify/cloud") == "controller"
    assert controller.suites_for(project, _inventory(tmp_path), ["web1"]) == []  # it names no setting


def test_a_scope_misspelt_is_refused_with_the_choices(tmp_path):
    _suite(tmp_path, "")
    (tmp_path / "verify/cloud/conftest.py").write_text('opsrun_scope = "controler"\n')
    with pytest.raises(ConfigError) as err:
        controller.scope_of(tmp_path / "verify/cloud")
    assert str(err.value) == (
        f"{tmp_path}/verify/cloud/conftest.py: opsrun_scope: 'controler' is not a scope. "
        "Fix: write one of 'hosts', 'controller', or leave it out (each host's tests)"
    )

import json

from opsrun.model.results import DeployRun, HostRun, OperationResult, TestResult, VerifyRun


def op(name, changed=False, success=True, error=None):
    return OperationResult(name, changed, success, error)


def test_host_status_from_operations():
    assert HostRun("a", [op("x"), op("y")]).status == "ok"
    assert HostRun("a", [op("x", changed=True), op("y")]).status == "changed"
    assert HostRun("a", [op("x", changed=True), op("y", success=False, error="boom")]).status == "failed"
    assert HostRun("a", [], error="could not connect").status == "failed"


def test_deploy_run_json_shape_and_exit_code():
    run = DeployRun(
        "lab",
        "nginx",
        False,
        [
            HostRun("web1", [op("install", changed=True), op("config", changed=True)]),
            HostRun("web2", [op("install"), op("config", success=False, error="nginx -t failed")]),
        ],
    )
    doc = run.to_dict()
    assert doc["status"] == "failed" and run.exit_code == 1
    assert doc["hosts"]["web1"]["status"] == "changed"
    assert doc["hosts"]["web1"]["changed"] == 2
    # what the docs promise (docs/apply.md) of each operation: name, changed, success, error
    config = doc["hosts"]["web2"]["operations"][1]
    assert [config[k] for k in ("name", "changed", "success", "error")] == ["config", False, False, "nginx -t failed"]
    assert json.loads(json.dumps(doc)) == doc  # plain JSON all the way down, as --format json prints it
    assert run.host("web2").failed_operation().name == "config"


def test_a_dry_run_operation_lists_the_commands_and_says_when_its_change_is_only_known_when_applied():
    why = "conditional on an earlier operation (_if): only known when applied"
    ops = [
        OperationResult("install", True, True, None, ["apt-get install -y nginx"]),
        OperationResult("reload", True, True, None, ["systemctl reload nginx"], True, unknown=why),
    ]
    doc = DeployRun("lab", "nginx", True, [HostRun("web1", ops)]).to_dict()
    install, reload = doc["hosts"]["web1"]["operations"]
    assert (install["commands"], install["conditional"], install["unknown"]) == (
        ["apt-get install -y nginx"],
        False,
        None,
    )
    assert (reload["commands"], reload["conditional"], reload["unknown"]) == (["systemctl reload nginx"], True, why)


def test_deploy_run_success_when_no_host_failed():
    run = DeployRun("lab", "nginx", True, [HostRun("web1", [op("x", changed=True)])])
    assert run.status == "success" and run.exit_code == 0


def test_verify_run_fails_on_any_failed_test_and_when_nothing_ran():
    passed = TestResult("web1", "test_a", "passed")
    failed = TestResult("web2", "test_a", "failed", "assert False")
    assert VerifyRun("lab", "nginx", ["web1"], [passed]).status == "passed"
    assert VerifyRun("lab", "nginx", ["web1", "web2"], [passed, failed]).exit_code == 1
    assert VerifyRun("lab", "nginx", ["web1"], []).status == "failed"
    doc = VerifyRun("lab", "nginx", ["web1", "web2"], [passed, failed]).to_dict()
    assert doc["hosts"]["web1"]["status"] == "passed"
    assert doc["hosts"]["web2"]["tests"] == [
        {"test": "test_a", "outcome": "failed", "message": "assert False", "seconds": 0.0, "started": None}
    ]


def test_upgrades_are_read_from_dpkg_output():
    out = [
        "Preparing to unpack .../opsrun-demo_1.1_all.deb ...",
        "Unpacking opsrun-demo (1.1) over (1.0) ...",
        "Unpacking libc6:amd64 (2.36-9+deb12u8) over (2.36-9+deb12u7) ...",
        "Setting up opsrun-demo (1.1) ...",
    ]
    run = HostRun("web1", [OperationResult("Upgrade packages", True, True, output=out)])
    assert run.upgrades == [
        {"package": "opsrun-demo", "from": "1.0", "to": "1.1"},
        {"package": "libc6", "from": "2.36-9+deb12u7", "to": "2.36-9+deb12u8"},
    ]


def test_drift_is_never_clean_unless_every_host_was_seen():
    from opsrun.checks.drift import DriftRun, Finding

    def run(**kw):
        r = DriftRun("lab", ["nginx"], ["web1", "web2"])
        for k, v in kw.items():
            setattr(r, k, v)
        return r

    assert (run().status, run().exit_code) == ("clean", 0)
    partial = run(unreachable={"web2": "could not connect"})
    assert (partial.status, partial.exit_code, partial.checked) == ("partial", 1, ["web1"])  # never 0 unasked
    allowed = run(unreachable={"web2": "could not connect"}, allow_unreachable=True)
    assert (allowed.status, allowed.exit_code) == ("partial", 0)
    drift_too = run(unreachable={"web2": "x"}, findings=[Finding("web1", "nginx", "op", "will_change", ["cmd"])])
    assert (drift_too.status, drift_too.exit_code) == ("drift", 1), "an unseen host outweighs drift found"
    drift_too.allow_unreachable = True
    assert drift_too.exit_code == 3
    nobody = run(unreachable={"web1": "x", "web2": "y"})
    assert (nobody.status, nobody.exit_code, nobody.checked) == ("error", 1, [])
    error = run(findings=[Finding("web2", "nginx", "(dry run)", "error", ["deploys/nginx.py:3: RuntimeError: x"])])
    assert (error.status, error.exit_code, error.checked, error.drifted) == ("error", 1, ["web1"], [])
    both = run(findings=[Finding("web1", "nginx", "op", "will_change", ["cmd"]), *error.findings])
    assert both.status == "error", "an error outweighs drift: drift on web2 is not known"
    assert (run(interrupted="interrupted").status, run(interrupted="x").exit_code) == ("interrupted", 130)
    doc = partial.to_dict()["summary"]
    assert (doc["hosts"], doc["checked"], doc["unreachable"], doc["errors"]) == (2, 1, 1, 0)

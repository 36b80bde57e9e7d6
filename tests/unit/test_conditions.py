"""A dry run's judgement of `_if=` conditions (opsrun.engine.conditions, engine.dry_run.operation_result): an
operation conditional on earlier ones is "no change" when none of them will change, "will change" when the
condition is plain and/or/not (or any/all) of their changes and says so, and unknown only otherwise, with
the reason. The operations are pyinfra's own OperationMeta, as a dry run leaves them; the conditions are
compiled from a file, as pyinfra compiles a deploy file. The lab shows it on real hosts (tests/lab/test_drift.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyinfra.api.operation import OperationMeta
from pyinfra.operations.util import all_changed, any_changed

from opsrun.engine.conditions import judge
from opsrun.engine.dry_run import operation_result
from tests.conftest import REPO

NAMES = {"conf": "mongod.conf", "started": "mongod enabled and running", "restart": "Restart"}


def op(name: str, will_change: bool) -> OperationMeta:
    """An earlier operation after a dry run: its hash is its name, `will_change` its own prediction."""
    return OperationMeta(name, will_change)


def deploy_condition(tmp_path: Path, expression: str, **ops: OperationMeta):
    """`expression` (the `_if=` of a deploy) compiled from a file of its own with `ops` as the deploy's
    module-level names, as pyinfra's exec_file runs a deploy file."""
    return from_file(tmp_path, f"cond = {expression}\n", **ops)


def from_file(tmp_path: Path, code: str, **ops: OperationMeta):
    """`cond` of `code`, run as a deploy file whose module-level names include `ops` (and os)."""
    path = tmp_path / "deploy.py"
    path.write_text("import os\n" + "".join(f"{n} = OPS[{n!r}]\n" for n in ops) + code)
    scope = {"OPS": ops}
    exec(compile(path.read_text(), str(path), "exec"), scope)
    return scope["cond"]


def shipped_restart_condition() -> str:
    """The mongo_replicaset deploy's restart condition, as shipped."""
    text = (REPO / "deploys" / "mongo_replicaset.py").read_text()
    return re.search(r"restart_member\(.*?_if=(lambda: [^\n]+),\n", text, flags=re.S).group(1)


class Data:
    """What pyinfra keeps per host and operation (StateOperationHostData): the meta, the arguments, and the
    generator of the commands (which a dry run lists)."""

    def __init__(self, meta: OperationMeta, cond=None):
        self.operation_meta, self.global_arguments = meta, {"_if": cond}

    def command_generator(self):
        yield "systemctl restart mongod"


def predict(cond, meta: OperationMeta | None = None, idempotent: bool = True, judged=None):
    meta = meta or op("restart", True)
    return operation_result(
        object(), object(), Data(meta, cond), meta._hash, lambda h: NAMES.get(h, h), {meta._hash: idempotent}, judged
    )


@pytest.mark.parametrize(
    ("conf", "started", "verdict"),
    [(False, False, "no change"), (True, False, "will change"), (True, True, "no change")],
    ids=["converged", "hand-edited mongod.conf", "first start"],
)
def test_the_mongo_restart_follows_its_config_upload(tmp_path, conf, started, verdict):
    """On main the restart was unknown on every host of a converged fleet: three unknowns in every nightly."""
    ops = {"conf": op("conf", conf), "started": op("started", started)}
    cond = deploy_condition(tmp_path, shipped_restart_condition(), **ops)
    result = predict(cond)
    assert (result.unknown, result.conditional) == (None, False)
    assert result.changed == (verdict == "will change")
    assert result.commands == (["'systemctl restart mongod'"] if result.changed else [])


def test_pyinfras_any_and_all_changed_and_lists_are_judged_from_the_earlier_operations():
    a, b = op("a", True), op("b", False)
    assert predict(any_changed(a, b)).changed and not predict(any_changed(b, b)).changed
    assert predict(all_changed(a, a)).changed and not predict(all_changed(a, b)).changed
    assert predict([a.did_change, b.did_not_change]).changed and not predict([a.did_change, b.did_change]).changed
    assert all(predict(c).unknown is None for c in (any_changed(a, b), [a.did_change], b.did_change))


def test_a_def_of_one_return_is_read_like_a_lambda(tmp_path):
    code = "def changed():\n    'the config changed'\n    return conf.did_change()\ncond = changed\n"
    cond = from_file(tmp_path, code, conf=op("conf", True))
    assert predict(cond).changed and predict(cond).unknown is None


def test_a_condition_opsrun_cannot_read_is_no_change_when_nothing_it_reads_will_change(tmp_path):
    expression = "lambda: conf.did_change() or os.path.exists('/etc/force-restart')"
    calm = predict(deploy_condition(tmp_path, expression, conf=op("conf", False)))
    assert (calm.changed, calm.unknown) == (False, None)
    busy = predict(deploy_condition(tmp_path, expression, conf=op("conf", True)))
    assert busy.changed and busy.conditional
    assert "opsrun cannot read" in busy.unknown and "mongod.conf may change" in busy.unknown
    assert f"({tmp_path.name}/deploy.py:3)" in busy.unknown  # where the condition is written


def test_a_condition_on_no_earlier_operation_is_unknown_with_the_reason():
    result = predict(lambda: True)
    assert result.changed and result.unknown.startswith("conditional (_if) on `True`")
    assert "reads no earlier operation: known when applied" in result.unknown


def test_a_condition_on_an_operation_whose_change_is_unknown_is_unknown():
    """Chained: the restart follows the config, whose own condition nobody could judge."""
    conf = op("conf", True)
    result = predict(conf.did_change, judged={"conf": None})
    assert result.unknown == "conditional (_if) on mongod.conf, whose change is itself unknown: only known when applied"
    assert not predict(conf.did_change, judged={"conf": False}).changed  # its condition said no: no change follows


def test_the_judgements_are_kept_for_the_operations_after():
    judged: dict = {}
    predict(op("conf", False).did_change, meta=op("restart", True), judged=judged)
    assert judged == {"restart": False}
    predict(None, meta=op("reload", False), judged=judged)
    assert judged == {"restart": False, "reload": False}


def test_a_shell_command_run_because_earlier_operations_change_will_change_not_unknown():
    """pm2's reload is a server.shell behind any_changed(files): not idempotent, but certain to run."""
    files = op("files", True)
    assert predict(any_changed(files), idempotent=False).unknown is None
    assert predict(any_changed(files), idempotent=False).changed
    assert not predict(any_changed(op("files", False)), idempotent=False).changed
    assert "not idempotent by nature" in predict(None, idempotent=False).unknown


def test_judge_says_why_for_a_method_it_does_not_know():
    meta = op("conf", True)
    judgement = judge(meta.is_complete, lambda m: True, lambda m: m._hash)
    assert judgement.holds is None
    assert judgement.reason == "conditional (_if) on conf.is_complete: only known when applied"

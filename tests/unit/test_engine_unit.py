"""The engine's pure helpers (the pyinfra side is proved against the lab)."""

from opsrun.engine.dry_run import predict_if


class Meta:
    """Stands in for pyinfra's OperationMeta: `will_change` from the dry run, did_* used by `_if=`."""

    def __init__(self, will_change: bool):
        self.will_change = will_change

    def did_change(self) -> bool:
        raise AssertionError("not evaluated in a dry run")

    def did_not_change(self) -> bool:
        raise AssertionError("not evaluated in a dry run")


def test_no_condition_means_the_op_runs():
    assert predict_if(None) is True


def test_did_change_of_an_earlier_op_follows_its_dry_run():
    assert predict_if(Meta(True).did_change) is True
    assert predict_if(Meta(False).did_change) is False
    assert predict_if(Meta(False).did_not_change) is True


def test_a_list_needs_all_and_any_false_wins():
    assert predict_if([Meta(True).did_change, Meta(True).did_change]) is True
    assert predict_if([Meta(True).did_change, Meta(False).did_change]) is False
    assert predict_if([lambda: True, Meta(False).did_change]) is False


def test_anything_else_is_unknown():
    assert predict_if(lambda: True) is None
    assert predict_if([Meta(True).did_change, lambda: True]) is None


def test_pyinfras_any_changed_and_all_changed_follow_their_ops_dry_runs():
    from pyinfra.operations.util import all_changed, any_changed

    assert predict_if(any_changed(Meta(False), Meta(False))) is False
    assert predict_if(any_changed(Meta(False), Meta(True))) is True
    assert predict_if(all_changed(Meta(True), Meta(False))) is False
    assert predict_if(all_changed(Meta(True), Meta(True))) is True

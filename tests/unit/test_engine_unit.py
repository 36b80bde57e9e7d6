"""The engine's pure helpers (the pyinfra side is proved against the lab)."""

import pytest

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


class DeadConnector:
    """What paramiko does when a host's connection closes while a command opens its channel: the transport
    thread's EOFError comes out of exec_command, open_sftp..."""

    def run_shell_command(self, *_a, **_k):
        raise EOFError()

    put_file = get_file = run_shell_command


@pytest.mark.parametrize("method", ["run_shell_command", "put_file", "get_file"])
def test_a_connection_closed_under_a_command_is_that_hosts_error_not_the_end_of_the_run(monkeypatch, method):
    """pyinfra 3.10 takes TimeoutError, OSError and SSHException from a command as that host's failure; an
    EOFError (a host's deadline closed its connection mid-command, or its network went away) ended the
    worker, and every host's result with it (seen when a lab test cut a host's network mid-apply)."""
    from paramiko import SSHException
    from pyinfra.api.host import Host

    from opsrun.engine import hooks

    for name in ("run_shell_command", "put_file", "get_file"):  # put back after the test: the hook wraps them
        monkeypatch.setattr(Host, name, getattr(Host, name))
    monkeypatch.setattr(Host, "_check_state", lambda _self: None)
    host = Host.__new__(Host)
    host.connector = DeadConnector()
    hooks.connection_loss_fails_the_host()
    with pytest.raises(SSHException, match="the connection to the host closed"):
        getattr(host, method)("true")

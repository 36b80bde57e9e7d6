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


class FullHost:
    """A host's connector whose SFTP upload fails the way OpenSSH's sftp-server answers any errno it has no
    code for (ENOSPC, EROFS: "Failure"), or with a code (EACCES), and whose shell answers as a full disk does."""

    def __init__(self, upload_error=None, copy_fails=False):
        self.upload_error, self.copy_fails = upload_error, copy_fails
        self.commands: list[tuple[str, dict]] = []

    def put_file(self, src, dest, remote_temp_filename=None, **kwargs):
        if self.upload_error is not None:
            raise self.upload_error
        return not self.copy_fails  # with sudo: the `cp` into place failed (pyinfra only logs its stderr)

    def run_shell_command(self, command, **kwargs):
        from pyinfra.connectors.util import CommandOutput, OutputLine

        self.commands.append((command.get_raw_value(), kwargs))
        line = "head: error writing 'standard output': No space left on device"
        return False, CommandOutput([OutputLine("stderr", line)])

    def get_file(self, *_a, **_k):
        raise OSError("Failure")


def host_on(monkeypatch, connector, before=lambda: None):
    """A pyinfra Host on `connector`, in operation `op1`, with Host's methods wrapped for their failure words
    (after `before`'s hooks)."""
    from pyinfra.api.host import Host

    from opsrun.engine import hooks

    for name in ("run_shell_command", "put_file", "get_file"):  # put back after the test: the hook wraps them
        monkeypatch.setattr(Host, name, getattr(Host, name))
    before()
    monkeypatch.setattr(Host, "_check_state", lambda _self: None)
    monkeypatch.setattr(Host, "_get_temp_directory", lambda _self: "/tmp")
    host = Host.__new__(Host)
    host.connector, host.name, host.executing_op_hash = connector, "web2", "op1"
    return host, hooks.keep_failure_words()


def test_an_upload_sftp_calls_a_failure_is_said_in_the_hosts_own_words(monkeypatch):
    import io

    host, words = host_on(monkeypatch, FullHost(upload_error=OSError("Failure")))
    with pytest.raises(OSError, match="Failure"):  # still the operation's failure, as pyinfra takes it
        host.put_file(io.BytesIO(b"x" * 4096), "/etc/nginx/nginx.conf")
    assert words == {("web2", "op1"): "upload to /etc/nginx/nginx.conf failed: No space left on device"}
    [(probe, kwargs)] = host.connector.commands
    assert probe.startswith("sh -c ") and probe.endswith(" probe 4096 /etc/nginx/nginx.conf.opsrun-probe")
    assert "_sudo" not in kwargs


def test_an_upload_refused_with_a_code_needs_no_probe(monkeypatch):
    import errno
    import io

    host, words = host_on(monkeypatch, FullHost(upload_error=PermissionError(errno.EACCES, "Permission denied")))
    with pytest.raises(PermissionError):
        host.put_file(io.BytesIO(b"x"), "/etc/x")
    assert words == {("web2", "op1"): "upload to /etc/x failed: Permission denied"}
    assert host.connector.commands == []


def test_with_sudo_the_upload_is_probed_where_it_failed(monkeypatch):
    """pyinfra's SFTP writes a temporary file as the login user, then copies it into place with sudo: a
    failed SFTP write is probed there without sudo, a failed copy at the destination with sudo."""
    import io

    host, words = host_on(monkeypatch, FullHost(upload_error=OSError("Failure")))
    with pytest.raises(OSError):
        host.put_file(io.BytesIO(b"xy"), "/etc/x", remote_temp_filename="/tmp/pyinfra-abc", _sudo=True)
    [(probe, kwargs)] = host.connector.commands
    assert probe.endswith(" probe 2 /tmp/pyinfra-abc.opsrun-probe") and "_sudo" not in kwargs

    host, words = host_on(monkeypatch, FullHost(copy_fails=True))
    assert host.put_file(io.BytesIO(b"xy"), "/etc/x", _sudo=True) is False
    [(probe, kwargs)] = host.connector.commands
    assert probe.endswith(" probe 2 /etc/x.opsrun-probe") and kwargs["_sudo"] is True
    assert words == {("web2", "op1"): "upload to /etc/x failed: No space left on device"}


def test_a_command_that_raised_keeps_what_it_said(monkeypatch):
    from paramiko import SSHException

    from opsrun.engine import hooks

    host, words = host_on(monkeypatch, DeadConnector(), before=hooks.connection_loss_fails_the_host)  # as the worker
    with pytest.raises(SSHException):
        host.run_shell_command("true")
    assert words == {("web2", "op1"): "the connection to the host closed (EOFError)"}

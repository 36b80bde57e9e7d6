"""engine.spare: the worker started ahead is the one the next run takes, a spare follows each run once
asked for, and what nobody took is ended with its folder. The workers here are stand-ins that only read
stdin (as a real one does before its request); the real worker runs in every lab test."""

from __future__ import annotations

import os
import sys

import pytest

from opsrun import entry
from opsrun.cli import cli
from opsrun.engine import spare


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(spare, "COMMAND", [sys.executable, "-c", "import sys; sys.stdin.buffer.read()"])
    yield
    spare.end()


def test_the_prestarted_worker_is_the_one_taken_and_a_spare_follows_each_run(stand_in):
    spare.prestart()
    ahead = spare._spare
    assert ahead is not None and ahead.proc.poll() is None
    taken = spare.take()
    assert taken is ahead and spare._spare is None
    spare.replenish()
    following = spare._spare
    assert following is not None and following is not taken and following.proc.poll() is None
    taken.close()
    assert not taken.folder.exists()
    spare.end()
    assert following.proc.returncode is not None and not following.folder.exists()
    spare.replenish()
    assert spare._spare is None, "after the end, no spare is started"


def test_without_prestart_each_run_starts_its_own_and_none_is_kept(stand_in):
    worker = spare.take()
    try:
        assert worker.proc.poll() is None
        spare.replenish()
        assert spare._spare is None
    finally:
        worker.close()
    assert worker.proc.returncode is not None and not worker.folder.exists()


def test_a_spare_that_died_is_replaced_on_take(stand_in):
    spare.prestart()
    dead = spare._spare
    assert dead is not None
    os.kill(dead.proc.pid, 9)
    dead.proc.wait()
    worker = spare.take()
    try:
        assert worker is not dead and worker.proc.poll() is None and not dead.folder.exists()
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["apply", "lab", "nginx"], "apply"),
        (["--project", "apply", "drift", "lab"], "drift"),
        (["--state", "postgresql://x", "--project=/p", "verify", "lab"], "verify"),
        (["--version"], None),
        ([], None),
    ],
)
def test_the_entry_finds_the_command(argv, command):
    assert entry.command_of(argv) == command


def test_the_entry_knows_every_group_option_that_takes_a_value_and_the_worker_commands_exist():
    takes_value = [p for p in cli.params if not getattr(p, "is_flag", False) and not getattr(p, "count", False)]
    with_value = {opt for p in takes_value for opt in p.opts}
    assert with_value == entry.GROUP_OPTIONS_WITH_VALUE
    assert set(cli.commands) >= entry.WORKER_COMMANDS


def test_after_the_last_run_no_spare_is_started(stand_in):
    spare.prestart()
    spare.last_run()
    worker = spare.take()
    try:
        assert worker.proc.poll() is None, "the worker started ahead is still the one the last run takes"
        spare.replenish()
        assert spare._spare is None
    finally:
        worker.close()

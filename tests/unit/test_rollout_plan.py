import pytest

from opsrun.errors import ConfigError
from opsrun.rollout import NO_WAVE, batch_sizes, group_waves, make_plan, parse_max_fail, parse_serial

WHERE = "group_data/web.py"
HOSTS = [f"web{i}" for i in range(1, 11)]


@pytest.mark.parametrize(
    ("serial", "total", "sizes"),
    [
        (1, 3, [1, 1, 1]),
        (2, 5, [2, 2, 1]),
        (10, 3, [3]),
        ("25%", 10, [2, 2, 2, 2, 2]),  # 2.5 rounds down
        ("30%", 10, [3, 3, 3, 1]),
        ("10%", 4, [1, 1, 1, 1]),  # 0.4 rounds down to 0, and a batch is never empty
        ("100%", 7, [7]),
        ([1, "50%", "100%"], 4, [1, 2, 1]),  # the ramp: canary, half, the rest
        ([1, 2], 6, [1, 2, 2, 1]),  # the last entry repeats
        ([1, "50%", "100%"], 1, [1]),
        (1, 0, []),
    ],
)
def test_batch_sizes(serial, total, sizes):
    assert batch_sizes(parse_serial(serial, where=WHERE), total) == sizes


def test_plan_puts_canary_alone_in_first_batch_in_inventory_order():
    plan = make_plan(HOSTS[:4], parse_serial([1, "50%", "100%"], where=WHERE))
    assert plan.batches == (("web1",), ("web2", "web3"), ("web4",))
    assert plan.hosts == HOSTS[:4]


def test_plan_over_limited_hosts_counts_percentages_of_those_hosts():
    plan = make_plan(["web2", "web5", "web7", "web9"], parse_serial("50%", where=WHERE))
    assert plan.batches == (("web2", "web5"), ("web7", "web9"))


@pytest.mark.parametrize(
    ("max_fail", "total", "budget"),
    [(0, 10, 0), (2, 10, 2), ("10%", 10, 1), ("25%", 10, 2), ("10%", 4, 0), ("0%", 10, 0), ("100%", 3, 3)],
)
def test_failure_budget(max_fail, total, budget):
    assert make_plan(HOSTS[:total], (1,), parse_max_fail(max_fail, where=WHERE)).max_fail == budget


@pytest.mark.parametrize(
    ("serial", "problem"),
    [
        (0, "0 is not allowed here."),
        (-1, "-1 is not allowed here."),
        ("0%", "'0%' is out of range."),
        ("150%", "'150%' is out of range."),
        ("half", "'half' is not a count or a percentage."),
        ([], "an empty ramp has no batches."),
        ([1, "x"], "'x' is not a count or a percentage."),
        (True, "True is not a count or a percentage."),
        (2.5, "2.5 is not a count or a percentage."),
    ],
)
def test_invalid_serial_names_file_field_and_fix(serial, problem):
    with pytest.raises(ConfigError) as err:
        parse_serial(serial, where=WHERE)
    assert str(err.value).startswith(f"{WHERE}: serial: {problem} Fix: ")
    assert err.value.exit_code == 2


@pytest.mark.parametrize("max_fail", [-1, "101%", "many"])
def test_invalid_max_fail(max_fail):
    with pytest.raises(ConfigError, match=r"^group_data/web\.py: max_fail: "):
        parse_max_fail(max_fail, where=WHERE)


# ------------------------------------------------------------------------------------- waves (patch groups)

WAVE_GROUPS = {
    "a": ("web", "patch_wave1"),
    "b": ("web", "patch_wave2"),
    "c": ("web", "patch_wave1"),
    "d": ("web", "patch_wave10"),
    "e": ("web",),
    "f": ("web", "patch_wave2"),
}


def test_waves_in_natural_order_and_hosts_in_no_wave_last():
    waves = group_waves(list(WAVE_GROUPS), WAVE_GROUPS, "patch_")
    assert waves == [
        ("patch_wave1", ["a", "c"]),
        ("patch_wave2", ["b", "f"]),
        ("patch_wave10", ["d"]),
        (NO_WAVE, ["e"]),
    ]


def test_batches_never_span_two_waves():
    hosts = list(WAVE_GROUPS)
    plan = make_plan(hosts, (3,), 0, group_waves(hosts, WAVE_GROUPS, "patch_"))
    assert plan.batches == (("a", "c"), ("b", "f"), ("d",), ("e",))
    assert plan.waves == ("patch_wave1", "patch_wave2", "patch_wave10", NO_WAVE)


def test_a_ramp_and_percentages_apply_within_each_wave():
    groups = {h: (f"patch_w{1 if h < 'e' else 2}",) for h in "abcdefgh"}
    hosts = list(groups)
    plan = make_plan(hosts, (1, "50%"), "25%", group_waves(hosts, groups, "patch_"))
    assert plan.batches == (("a",), ("b", "c"), ("d",), ("e",), ("f", "g"), ("h",))
    assert plan.max_fail == 2  # the failure budget is the whole rollout's


def test_without_waves_the_plan_is_unchanged():
    hosts = ["a", "b", "c"]
    assert make_plan(hosts, (2,)).to_dict() == {"batches": [["a", "b"], ["c"]], "max_fail": 0}


def test_a_limit_to_one_wave_is_one_wave():
    hosts = ["a", "c"]  # --limit patch_wave1
    assert make_plan(hosts, (1,), 0, group_waves(hosts, WAVE_GROUPS, "patch_")).waves == ("patch_wave1",) * 2

import pytest

from opsrun.rollout import NO_WAVE, batch_sizes, group_waves, make_plan

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
    assert batch_sizes(tuple(serial) if isinstance(serial, list) else (serial,), total) == sizes


def test_plan_puts_canary_alone_in_first_batch_in_inventory_order():
    plan = make_plan(HOSTS[:4], (1, "50%", "100%"))
    assert plan.batches == (("web1",), ("web2", "web3"), ("web4",))
    assert plan.hosts == HOSTS[:4]


def test_plan_over_limited_hosts_counts_percentages_of_those_hosts():
    plan = make_plan(["web2", "web5", "web7", "web9"], ("50%",))
    assert plan.batches == (("web2", "web5"), ("web7", "web9"))


@pytest.mark.parametrize(
    ("max_fail", "total", "budget"),
    [(0, 10, 0), (2, 10, 2), ("10%", 10, 1), ("25%", 10, 2), ("10%", 4, 0), ("0%", 10, 0), ("100%", 3, 3)],
)
def test_failure_budget(max_fail, total, budget):
    assert make_plan(HOSTS[:total], (1,), max_fail).max_fail == budget


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

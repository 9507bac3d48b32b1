"""The scaling policy, on its own: formula, up at once, down after the window, stalls."""
from scaling.config import AgentScaling
from scaling.policy import Decision, Observation, PolicyState, decide, recommend


def conf(**kw) -> AgentScaling:
    base = dict(agent="intake", topics=("leads.submitted",), lag_per_worker=1000, activation_lag=1,
                min_workers=1, max_workers=6, scale_down_window_s=30, stall_after_s=20)
    return AgentScaling(**{**base, **kw})


def run(c: AgentScaling, steps: list[tuple[float, int, int]], partitions: int = 8) -> list[Decision]:
    """Feed (time, lag, committed) observations, with running = the last decision."""
    state, out, running = PolicyState(), [], c.min_workers
    for now, lag, committed in steps:
        d, state = decide(c, Observation(now, lag, committed, partitions, running), state)
        running = d.desired
        out.append(d)
    return out


def test_the_formula_is_kedas_clamped_by_bounds_and_partitions():
    c = conf()
    assert recommend(c, 0, 8) == 1
    assert recommend(c, 1, 8) == 1
    assert recommend(c, 2500, 8) == 3
    assert recommend(c, 1_000_000, 8) == 6
    assert recommend(c, 1_000_000, 4) == 4  # never more workers than partitions
    assert recommend(conf(min_workers=2), 0, 8) == 2


def test_an_agent_with_min_zero_rests_at_zero_below_the_activation_threshold():
    c = conf(min_workers=0, activation_lag=50)
    assert recommend(c, 0, 8) == 0
    assert recommend(c, 49, 8) == 0
    assert recommend(c, 50, 8) == 1
    [d] = run(c, [(0, 10, 0)])
    assert d.desired == 0


def test_scale_up_is_immediate_and_says_why():
    c = conf()
    d = run(c, [(0, 0, 0), (2, 4500, 0)])[-1]
    assert (d.previous, d.desired, d.direction) == (1, 5, "up")
    assert "4500" in d.reason and "up to 5" in d.reason


def test_scale_down_waits_for_the_window_then_goes_to_the_highest_recent_need():
    c = conf(scale_down_window_s=30)
    steps = [(0, 0, 0), (2, 5500, 100)] + [(t, 0, 6000 + t) for t in range(4, 40, 2)]
    ds = run(c, steps)
    up_at = ds[1]
    assert up_at.desired == 6
    downs = [(steps[i][0], d) for i, d in enumerate(ds) if d.direction == "down"]
    assert downs, "never scaled down"
    first_down_t, first_down = downs[0]
    assert first_down_t >= 2 + 30  # not before the window since the scale-up
    assert first_down.desired == 1 and "highest in the last 30s" in first_down.reason


def test_a_dip_inside_the_window_does_not_flap():
    c = conf(scale_down_window_s=30)
    # a surge, a lull of a few seconds (lag 0), then the next wave: never up-down-up
    lags = [0, 6000, 5000, 0, 0, 0, 4000, 3000, 0, 0]
    ds = run(c, [(i * 2, lag, i * 1000) for i, lag in enumerate(lags)])
    directions = [d.direction for d in ds if d.direction != "hold"]
    assert directions == ["up"]
    assert all(d.desired == 6 for d in ds[1:])


def test_a_stalled_group_holds_its_workers_and_alerts_once():
    c = conf(stall_after_s=20)
    steps = [(0, 0, 500), (2, 3000, 500)] + [(t, 3000 + t * 100, 500) for t in range(4, 40, 2)]
    ds = run(c, steps)
    stalled = [d for d in ds if d.stalled]
    assert stalled, "a group that makes no progress must be reported"
    assert stalled[0].alert and "stalled" in stalled[0].alert
    assert [d.alert for d in stalled[1:]] == [None] * (len(stalled) - 1)  # once, not each poll
    # lag keeps growing but no worker is added while stalled
    assert {d.desired for d in stalled} == {stalled[0].previous}
    assert "stalled" in stalled[-1].reason


def test_a_stall_clears_when_offsets_move_again():
    c = conf(stall_after_s=10)
    steps = [(0, 0, 0), (2, 2000, 0)] + [(t, 2000, 0) for t in range(4, 20, 2)] + [(20, 1500, 500)]
    ds = run(c, steps)
    assert any(d.stalled for d in ds[:-1]) and not ds[-1].stalled


def test_no_workers_running_is_not_a_stall():
    c = conf(min_workers=0, stall_after_s=5)
    state = PolicyState()
    for t in range(0, 30, 2):
        d, state = decide(c, Observation(t, 500, 0, 8, 0), state)
        assert not d.stalled
    assert d.desired == 1


def parts(*rows: tuple[str, int, int]) -> tuple[tuple[str, int, int], ...]:
    return tuple(rows)


def test_a_partition_left_behind_while_others_move_is_a_stall_and_its_workers_are_restarted():
    """Faust issue #629: after a rebalance a worker may never fetch a partition it was given;
    the group's committed sum still moves (the other partitions), so only a per-partition view
    sees it. The workers are restarted when it is seen, and again every RESTART_EVERY periods."""
    from scaling.policy import RESTART_EVERY
    c, state, ds = conf(stall_after_s=10), PolicyState(), []
    for t in range(0, 80, 2):
        moving = 1000 + t * 50
        obs = Observation(t, 600, moving, 8, 1, parts(("sends.bulk/0", moving, 100), ("sends.bulk/1", 40, 500)))
        d, state = decide(c, obs, state)
        ds.append((t, d))
    first = next(t for t, d in ds if d.stalled)
    assert first == 10  # stall_after_s after the partition was first seen behind
    stalled = [d for t, d in ds if d.stalled]
    assert stalled[0].stuck == ("sends.bulk/1",) and "sends.bulk/1" in stalled[0].alert
    assert "1 partition(s)" in stalled[0].reason and stalled[0].desired == stalled[0].previous
    restarts = [t for t, d in ds if d.restart]
    assert restarts == [10, 10 + RESTART_EVERY * 10, 10 + 2 * RESTART_EVERY * 10]
    assert [d.alert is not None for d in stalled].count(True) == 1  # alerted once


def test_a_partition_that_moves_again_or_has_nothing_left_clears_the_stall():
    c, state = conf(stall_after_s=10), PolicyState()
    for t in range(0, 30, 2):
        d, state = decide(c, Observation(t, 500, 100 + t, 8, 1, parts(("t/0", 100 + t, 0), ("t/1", 7, 500))), state)
    assert d.stalled and d.stuck == ("t/1",)
    d, state = decide(c, Observation(30, 400, 230, 8, 1, parts(("t/0", 130, 0), ("t/1", 107, 400))), state)
    assert not d.stalled and not d.restart and d.stuck == ()
    d, state = decide(c, Observation(32, 0, 230, 8, 1, parts(("t/0", 130, 0), ("t/1", 107, 0))), state)
    assert not d.stalled


def test_partitions_all_moving_or_nobody_running_are_no_stall():
    c, state = conf(stall_after_s=5), PolicyState()
    for t in range(0, 40, 2):
        d, state = decide(c, Observation(t, 900, 10 * t, 8, 1, parts(("t/0", 5 * t, 450), ("t/1", 5 * t, 450))), state)
        assert not d.stalled and not d.restart
    c0, state = conf(min_workers=0, stall_after_s=5), PolicyState()
    for t in range(0, 40, 2):
        d, state = decide(c0, Observation(t, 500, 0, 8, 0, parts(("t/0", -1, 500))), state)
        assert not d.stalled and not d.restart

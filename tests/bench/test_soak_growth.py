"""The soak's memory growth is read from warm processes, each in its last life."""
from bench.soak import growth

M = 60.0


def test_a_worker_started_during_the_run_is_measured_from_its_own_fifth_minute():
    samples = {"w-0": [(t * M, 1, 200.0 + t) for t in range(31)],  # there from the start, +1 MB a minute
               "w-2": [(t * M, 2, 80.0 if t == 5 else 250.0) for t in range(5, 31)]}  # loading at minute 5
    got = growth(samples, 0.0, {"w-0": "worker", "w-2": "worker"})
    assert got["w-0"]["mb_at_5min"] == 205.0 and got["w-0"]["mb_end"] == 230.0
    assert got["w-2"]["mb_at_5min"] == 250.0 and got["w-2"]["growth_pct"] == 0.0  # not 80 -> 250
    assert got["w-2"]["max_mb"] == 250.0


def test_a_restarted_worker_is_measured_in_its_last_life_and_flagged():
    rows = [(t * M, 1, 300.0) for t in range(0, 12)] + [(t * M, 7, 150.0 + (t - 12)) for t in range(12, 31)]
    got = growth({"w": rows}, 0.0, {"w": "worker"})["w"]
    assert got["restarted"] and got["mb_at_5min"] == 155.0 and got["mb_end"] == 168.0


def test_a_process_not_warm_for_two_samples_is_left_out():
    assert growth({"w": [(29 * M, 3, 100.0), (30 * M, 3, 120.0)]}, 0.0, {"w": "worker"}) == {}

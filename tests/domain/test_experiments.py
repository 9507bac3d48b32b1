"""Experiments as configuration, the arm of a send request, the tally per lead and the looks."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.experiment_assignment import assign
from domain.experiments import (ArmTally, Exposure, ExperimentConfig, arm_named, arm_of_request, evaluate, tally)


def config(**over) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"list": "daily", "variants": [{"name": "a"}, {"name": "b", "subject": "Hi"}],
                                            **over})


def req(lead: str, **over) -> dict:
    return {"lead_id": lead, "list": "daily", "kind": "daily", **over}


def test_an_experiment_names_one_list_or_one_trigger_and_unique_variants():
    with pytest.raises(ValidationError, match="one list"):
        config(trigger="t")
    with pytest.raises(ValidationError, match="one list"):
        ExperimentConfig.model_validate({"variants": [{"name": "a"}, {"name": "b"}]})
    with pytest.raises(ValidationError, match="unique"):
        config(variants=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError, match="holdout"):
        config(variants=[{"name": "a"}, {"name": "holdout"}])
    with pytest.raises(ValidationError, match="promoted"):
        config(promoted="c")
    with pytest.raises(ValidationError):
        config(holdout=0.5)
    with pytest.raises(ValidationError):
        config(metric="click_to_open")  # its denominator depends on the arm: reported, not decided on


def test_the_arm_of_a_request_is_the_hash_s_and_only_daily_alerts_or_the_trigger_s_sends_are_in_it():
    e = config(holdout=0.2)
    arms = {lead: arm_of_request({"x": e}, req(lead)) for lead in (f"L{i}" for i in range(300))}
    weights = [("a", 1.0), ("b", 1.0)]
    assert all(arm.name == assign("x", lead, weights, 0.2 / 0.8 * 2) for lead, arm in arms.items())
    assert {arm.name for arm in arms.values()} == {"a", "b", "holdout"}
    assert all(arm.subject == ("Hi" if arm.name == "b" else None) for arm in arms.values())
    assert arm_of_request({"x": e}, req("L1", kind="welcome")) is None
    assert arm_of_request({"x": e}, req("L1", list="other")) is None
    assert arm_of_request({"x": config(status="stopped")}, req("L1")) is None
    t = ExperimentConfig.model_validate({"trigger": "t1", "variants": [{"name": "a"}, {"name": "b"}]})
    assert arm_of_request({"y": t}, req("L1", kind="triggered", trigger="trigger:t1")).experiment == "y"
    assert arm_of_request({"y": t}, req("L1", kind="triggered", trigger="trigger:t2")) is None
    # promoted: every lead gets the variant, the holdout's too
    promoted = config(holdout=0.2, promoted="b")
    assert {arm_of_request({"x": promoted}, req(lead)).name for lead in arms} == {"b"}
    assert arm_named({"x": e}, "x", "x/b").subject == "Hi" and arm_named({"x": e}, "x", "x/gone") is None


def test_the_tally_counts_each_lead_once_people_only_and_unsubscribes_after_exposure():
    exposures = [Exposure("L1", "a", 1000, ("s1", "s2")), Exposure("L2", "a", 1000, ("s3",)),
                 Exposure("L3", "b", 1000, ("s4",)), Exposure("L4", "holdout", 1000, ())]
    human = {"s1": True, "s2": True, "s4": False}  # L1 clicked twice; L3 only opened
    out = tally(exposures, human, {"L2": 5000, "L3": 10}, {"s3"})
    assert out["a"] == ArmTally("a", 2, 2, 1, 1, 1, 1)
    assert out["b"] == ArmTally("b", 1, 1, 1, 0, 0, 0)  # its unsubscribe came before the experiment
    assert out["holdout"] == ArmTally("holdout", 1, 0, 0, 0, 0, 0)
    assert out["a"].successes("click_to_open") == (1, 1) and out["a"].successes("unsubscribe") == (1, 2)


def test_a_look_carries_the_p_values_declares_a_winner_once_and_promotes_it_when_asked():
    e = config(min_sample=10, expected_lift=0.03, auto_promote=True)
    even = {"a": ArmTally("a", 1000, 1000, 300, 100, 0, 0), "b": ArmTally("b", 1000, 1000, 300, 101, 0, 0)}
    first = evaluate(e, even, 1)
    assert first.decision.winner is None and first.data.state.decision is None and first.data.promoted is None
    better = {"a": even["a"], "b": ArmTally("b", 1000, 1000, 380, 160, 0, 0)}
    second = evaluate(first.data, better, 2)
    assert second.decision.winner == "b" and second.data.state.decision.winner == "b"
    assert second.data.promoted == "b" and len(second.data.state.looks) == 2
    assert second.data.state.looks[1].p_values["b"] <= first.data.state.looks[0].p_values["b"]
    third = evaluate(second.data, even, 3)  # the numbers regress: the declared winner stays declared
    assert third.data.state.decision.winner == "b" and third.data.state.decision.at_ms == 2
    assert third.data.state.looks[-1].p_values["b"] == second.data.state.looks[-1].p_values["b"]


def test_for_unsubscribes_lower_is_better():
    e = config(metric="unsubscribe", min_sample=10, expected_lift=0.03)
    tallies = {"a": ArmTally("a", 1000, 1000, 0, 0, 100, 0), "b": ArmTally("b", 1000, 1000, 0, 0, 40, 0)}
    assert evaluate(e, tallies, 1).decision.winner == "b"


def test_a_trigger_experiment_may_vary_the_delay_per_arm():
    from domain.experiments import trigger_for_lead
    from domain.triggers import TriggerConfig, fire_at
    t = TriggerConfig.model_validate({"when": {"event": "job_saved"}, "action": {"template": "x", "delay": "1h"}})
    e = ExperimentConfig.model_validate({"trigger": "saved", "variants": [{"name": "hour"}, {"name": "day",
                                                                                             "delay": "1d"}]})
    delays = {}
    for lead in (f"L{i}" for i in range(40)):
        arm = arm_of_request({"x": e}, req(lead, kind="triggered", trigger="trigger:saved")).name
        delays[arm] = fire_at(trigger_for_lead({"x": e}, "saved", t, lead), 0, None)
    assert delays == {"hour": 3_600_000, "day": 86_400_000}
    assert trigger_for_lead({}, "saved", t, "L1") is t
    with pytest.raises(ValidationError, match="delay"):
        config(variants=[{"name": "a"}, {"name": "b", "delay": "2h"}])  # a list's alerts have no delay


def test_send_time_variants_are_for_lists_and_must_be_times_of_day():
    assert config(variants=[{"name": "a"}, {"name": "b", "send_time": "07:30"}]).variants[1].send_time == "07:30"
    with pytest.raises(ValidationError, match="time of day"):
        config(variants=[{"name": "a"}, {"name": "b", "send_time": "7pm"}])
    with pytest.raises(ValidationError, match="send_time"):
        ExperimentConfig.model_validate({"trigger": "saved", "variants": [{"name": "a"},
                                                                          {"name": "b", "send_time": "07:00"}]})

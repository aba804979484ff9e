"""Checkpoints: reading and resolving them, cutting the plan into parts, the bake, a paused roll's summary."""
import fractions

import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import checkpoints
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import outcome as roll_outcome
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import report as roll_report
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import rounds as roll_rounds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

from tests.unit.plugins.plugin_utils._roll.fakes import ALL, OPTIONS, FakeClient, operation, targets


def test_parse_accepts_counts_and_percentages():
    assert checkpoints.parse([1, "50%", "3", " 12.5 %", 7]) == [
        ("count", 1), ("percent", 50), ("count", 3), ("percent", fractions.Fraction("12.5")), ("count", 7)]
    assert checkpoints.parse([]) == [] and checkpoints.parse(None) == []


@pytest.mark.parametrize("value", [0, -1, "0%", "100%", "150%", "-5%", "abc", 1.5, True, "", "1/3%", {"a": 1}, None])
def test_parse_refuses_anything_else_naming_the_value(value):
    with pytest.raises(InputError) as info:
        checkpoints.parse([1, value])
    assert info.value.message.startswith("rolling_reimage_checkpoints: %r is neither" % (value,))


def test_parse_refuses_a_value_that_is_not_a_list():
    with pytest.raises(InputError, match="must be a list of instance counts and percentages"):
        checkpoints.parse("50%")


@pytest.mark.parametrize("given, total, expected", [
    ([1, "50%"], 6, [1, 3]),
    (["33%"], 6, [2]),             # 1.98 rounds up
    (["7%"], 100, [7]),            # exact: no float error rounds 7.000000000000001 up to 8
    (["1%"], 6, [1]),              # at least one instance
    ([6, 10, "99%"], 6, []),       # at or above the total: the end is implicit
    ([3, "50%", 3, 1], 6, [1, 3]),  # duplicates merge, ascending
])
def test_resolve(given, total, expected):
    assert checkpoints.resolve(checkpoints.parse(given), total) == expected


def _plan(tmp_path, client=None, names=ALL, check_mode=False, **options):
    return roll_plan.plan(client or FakeClient(), targets(names), dict(OPTIONS, **options),
                          roll_state.StateFile(str(tmp_path / "s.json")), print, check_mode=check_mode)


def _batches(state, dep="svc/svc-production"):
    return [(b["round"], b["upgrade_domain"], b["instances"]) for b in state["deployments"][dep]["batches"]]


def test_continue_plans_every_part_the_canary_smaller_than_its_upgrade_domain(tmp_path):
    # Upgrade domain 0: Web_IN_0, Web_IN_3, Worker_IN_0, Worker_IN_3; 1: Web_IN_1, Worker_IN_1; 2: the rest.
    state = _plan(tmp_path, checkpoints=checkpoints.parse([1, "50%"]), checkpoint_action="continue", checkpoint_delay=2)
    assert _batches(state) == [(0, 0, ["Web_IN_0"]), (1, 0, ["Web_IN_3", "Worker_IN_0", "Worker_IN_3"]),
                               (2, 1, ["Web_IN_1", "Worker_IN_1"]), (3, 2, ["Web_IN_2", "Worker_IN_2"])]
    assert state["rounds"] == 4
    info = state["checkpoints"]
    assert info["counts"] == [1, 4] and info["pause_at"] is None and info["delay"] == 2
    assert [(p["number"], p["checkpoint"], p["instances"], p["first_round"], p["last_round"]) for p in info["parts"]] == [
        (1, 1, 1, 0, 0), (2, 2, 3, 1, 1), (3, None, 4, 2, 3)]
    assert not any(i.get("waiting") for i in state["instances"].values())
    text = roll_plan.describe_plan(state)
    assert "checkpoints at 1, 4 of 8 instances (0 already done), action continue, bake 2s" in text
    assert "part 1 of 3: 1 instance(s), up to checkpoint 1 of 2 (1 of 8 instances):\nround 1:" in text
    assert "round 2:\n  svc/svc-production upgrade domain 0: Web_IN_3, Worker_IN_0, Worker_IN_3\n" \
           "checkpoint 2 of 2 (4 of 8 instances): bake 2s" in text
    assert [p for _f, _l, p in checkpoints.spans(state)] == info["parts"]
    assert checkpoints.part_ending_at(state, 1)["checkpoint"] == 2 and checkpoints.part_ending_at(state, 3) is None


def test_stop_plans_only_the_next_part_and_the_rest_waits(tmp_path):
    state = _plan(tmp_path, check_mode=True, checkpoints=checkpoints.parse([1, "50%"]))
    assert _batches(state) == [(0, 0, ["Web_IN_0"])] and state["rounds"] == 1
    assert state["checkpoints"]["pause_at"] == 1
    waiting = sorted(i["instance"] for i in state["instances"].values() if i.get("waiting"))
    assert waiting == sorted(set(ALL) - {"Web_IN_0"})
    text = roll_plan.describe_plan(state, True)
    assert "pause: the roll stops here, successfully, and the next run of the same roll goes on" in text
    assert ("part 2 of 3 (up to checkpoint 2 of 2 (4 of 8 instances), by a later run of the same roll): "
            "svc/svc-production/Web_IN_3, svc/svc-production/Worker_IN_0, svc/svc-production/Worker_IN_3") in text
    hosts = roll_outcome.host_outcomes(state, check_mode=True)
    assert hosts["h-Web_IN_0"]["outcome"] == "would_reimage"
    assert hosts["h-Worker_IN_2"]["outcome"] == "waiting"
    assert "would be waiting for the next part of the roll (checkpoint 1 of 2)" in hosts["h-Worker_IN_2"]["msg"]


def test_the_next_run_counts_what_the_history_shows_done(tmp_path):
    # Web_IN_0, the canary, was reimaged by the run that paused at checkpoint 1: the next part runs to checkpoint 2.
    client = FakeClient(history=[operation("a" * 32, "Web_IN_0", "Succeeded")])
    state = _plan(tmp_path, client=client, check_mode=True, checkpoints=checkpoints.parse([1, "50%"]))
    assert _batches(state) == [(0, 0, ["Web_IN_3", "Worker_IN_0", "Worker_IN_3"])]
    assert state["checkpoints"]["done_before"] == 1 and state["checkpoints"]["pause_at"] == 2
    assert [p["number"] for p in state["checkpoints"]["parts"]] == [2, 3]
    # Past the last checkpoint, the last part runs to the end: nothing waits, nothing pauses.
    done = [operation("%032x" % n, name, "Succeeded") for n, name in enumerate(
        ["Web_IN_0", "Web_IN_3", "Worker_IN_0", "Worker_IN_3"], 1)]
    state = _plan(tmp_path, client=FakeClient(history=done), check_mode=True, checkpoints=checkpoints.parse([1, "50%"]))
    assert [b[1] for b in _batches(state)] == [1, 2] and state["checkpoints"]["pause_at"] is None
    assert not any(i.get("waiting") for i in state["instances"].values())


def test_parts_follow_the_batch_order_across_deployments(tmp_path):
    both = targets(["Web_IN_0", "Web_IN_1"]) + targets(["Web_IN_0", "Web_IN_1"], slot="staging")
    state = roll_plan.plan(FakeClient(), both, dict(OPTIONS, checkpoints=checkpoints.parse([1, 3]),
                                                    checkpoint_action="continue"),
                           roll_state.StateFile(str(tmp_path / "s")), print)
    # Batch order: round 0 production then staging (upgrade domain 0), round 1 (upgrade domain 1) likewise. Part 1
    # is production's first instance; part 2 staging's first and production's second, in parallel; part 3 the last.
    assert _batches(state) == [(0, 0, ["Web_IN_0"]), (1, 1, ["Web_IN_1"])]
    assert _batches(state, "svc/svc-staging") == [(1, 0, ["Web_IN_0"]), (2, 1, ["Web_IN_1"])]
    assert state["rounds"] == 3
    assert checkpoints.batch_position(state["deployments"]["svc/svc-staging"], 0) is None
    assert checkpoints.batch_position(state["deployments"]["svc/svc-staging"], 2) == 1
    text = roll_plan.describe_plan(state)
    assert "round 1:\n  svc/svc-production upgrade domain 0: Web_IN_0\ncheckpoint 1 of 2" in text


def test_batch_size_holds_within_each_part(tmp_path):
    state = _plan(tmp_path, batch_size=3, checkpoints=checkpoints.parse([1]), checkpoint_action="continue")
    assert _batches(state) == [(0, 0, ["Web_IN_0"]), (1, 0, ["Web_IN_3", "Worker_IN_0", "Worker_IN_3"]),
                               (2, 1, ["Web_IN_1", "Worker_IN_1"]), (3, 2, ["Web_IN_2", "Worker_IN_2"])]


def test_without_checkpoints_the_plan_is_as_before(tmp_path):
    state = _plan(tmp_path)
    assert state["checkpoints"] is None and state["rounds"] == 3
    assert [b[0] for b in _batches(state)] == [0, 1, 2]
    assert "checkpoint" not in roll_plan.describe_plan(state)
    # Every checkpoint at or above the roll's size: no part, but the plan says why.
    state = _plan(tmp_path, names=ALL[:2], checkpoints=checkpoints.parse([2, 5]))
    assert state["rounds"] == 2 and state["checkpoints"]["pause_at"] is None
    text = roll_plan.describe_plan(state)
    assert "checkpoints: none below the roll's 2 instances" in text and "part" not in text


def _done(state, names):
    for name in names:
        state["instances"]["svc/svc-production/" + name.lower()].update(
            outcome="done", request_id="%032x" % len(name), start=100.0, end=110.0)


def test_a_paused_roll_succeeds_and_says_how_to_continue(tmp_path):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(ALL), dict(OPTIONS, checkpoints=checkpoints.parse([1])), state_file,
                           print)
    _done(state, ["Web_IN_0"])
    summary = roll_outcome.summarize(state, state_file)
    assert summary["status"] == "paused"
    assert summary["counts"] == {"done": 1, "failed": 0, "untouched": 0, "skipped": 0, "waiting": 7}
    since = roll_state.iso(state["counts_since"])
    assert summary["checkpoint"]["reached"] == 1 and summary["checkpoint"]["since"] == since
    assert "-e rolling_reimage_since=%s" % since in summary["checkpoint"]["how_to_continue"]
    hosts = summary["hosts"]
    assert hosts["h-Web_IN_0"]["outcome"] == "reimaged"
    assert hosts["h-Web_IN_1"]["outcome"] == "waiting"
    assert "waiting for the next part of the roll (checkpoint 1 of 1)" in hosts["h-Web_IN_1"]["msg"]
    table = roll_outcome.format_table(summary)
    assert "rolling reimage paused" in table and "7 waiting for a later part" in table
    assert "paused at checkpoint 1 of 1 (1 of 8 instances reimaged): to go on, run the same job again" in table


def test_a_roll_that_stopped_before_its_checkpoint_failed(tmp_path):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(ALL), dict(OPTIONS, checkpoints=checkpoints.parse([2])), state_file,
                           print)
    _done(state, ["Web_IN_0"])
    state["deployments"]["svc/svc-production"].update(stopped=True, stop_reason="Web_IN_3: boom")
    summary = roll_outcome.summarize(state, state_file)
    assert summary["status"] == "failed" and summary["checkpoint"] is None
    assert summary["counts"]["waiting"] == 0 and summary["counts"]["untouched"] == 7
    assert summary["hosts"]["h-Web_IN_1"]["outcome"] == "not_reimaged"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds


def _paused_plan(tmp_path, **options):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(ALL), dict(OPTIONS, checkpoints=checkpoints.parse([1, 2]), **options),
                           state_file, print)
    return state, state_file


def test_the_bake_waits_its_time_asks_the_gate_throughout_and_says_what_it_waits_for(tmp_path):
    state, state_file = _paused_plan(tmp_path, checkpoint_delay=65, checkpoint_action="continue")
    clock, lines, asked = Clock(), [], []

    def gate():
        asked.append(clock.now)
        return True, "fine"

    part = state["checkpoints"]["parts"][0]
    assert checkpoints.bake(state, state_file, part, lines.append, gate, sleep=clock.sleep, clock=clock) is None
    assert clock.now == 65 and asked[0] == 0 and asked[-1] == 65
    assert all(b - a <= 2.0 for a, b in zip(asked, asked[1:])), "the gate is asked every 2 s"
    assert lines[0] == ("checkpoint 1 of 2 (1 of 8 instances) reached: baking for 65s with the health gate asked "
                        "every 2s, then the next part")
    progress = [line for line in lines if ": baking, " in line]
    assert len(progress) == 3 and "baking, 20s of 65s" in progress[0], lines
    bake = state["checkpoints"]["bakes"][0]
    assert bake["checkpoint"] == 1 and bake["outcome"] == "baked" and bake["end"] >= bake["start"]


def test_a_gate_failing_during_the_bake_stops_the_roll(tmp_path):
    state, state_file = _paused_plan(tmp_path, checkpoint_delay=10, checkpoint_action="continue")
    clock = Clock()
    part = state["checkpoints"]["parts"][0]
    reason = checkpoints.bake(state, state_file, part, print, lambda: (clock.now < 5, "health gate: x answered 503"),
                              sleep=clock.sleep, clock=clock)
    assert reason == ("checkpoint 1 of 2 (1 of 8 instances): the health gate failed during the bake, 6s in: "
                      "health gate: x answered 503")
    assert state["checkpoints"]["bakes"][0]["outcome"] == "unhealthy"


def test_no_checkpoint_is_passed_once_a_deployment_stopped(tmp_path):
    both = targets(["Web_IN_0", "Web_IN_1"]) + targets(["Web_IN_0", "Web_IN_1"], slot="staging")
    state_file = roll_state.StateFile(str(tmp_path / "s"))
    state = roll_plan.plan(FakeClient(), both, dict(OPTIONS, checkpoints=checkpoints.parse([2]),
                                                    checkpoint_action="continue", checkpoint_delay=60),
                           state_file, print)
    state["deployments"]["svc/svc-staging"].update(stopped=True, stop_reason="boom")
    assert roll_rounds.pass_checkpoint(state, state_file, 1, print) is True, "round 1 ends no part"
    assert roll_rounds.pass_checkpoint(state, state_file, 0, print) is False
    assert state["deployments"]["svc/svc-production"]["stop_reason"] == (
        "checkpoint 1 of 1 (2 of 4 instances) not passed: the roll of svc/svc-staging stopped before it")
    assert state["checkpoints"]["bakes"] == [], "no bake"


def test_a_part_this_run_did_nothing_to_needs_no_bake(tmp_path):
    state, state_file = _paused_plan(tmp_path, checkpoint_delay=3600, checkpoint_action="continue")
    assert roll_rounds.pass_checkpoint(state, state_file, 0, print) is True
    assert state["checkpoints"]["bakes"] == []


def test_the_report_marks_checkpoints_and_bake_times(tmp_path):
    state, _state_file = _paused_plan(tmp_path, checkpoint_action="continue")
    _done(state, ["Web_IN_0", "Web_IN_3"])
    state["checkpoints"]["bakes"] = [{"checkpoint": 1, "start": 110.0, "end": 140.0, "outcome": "baked"}]
    page = roll_report.render(state)
    assert page.count('class="checkpoint"') == 1 and page.count('class="bake"') == 1
    assert "checkpoint 1 of 2: bake from" in page and "(30.0s)" in page
    assert "checkpoint (dashed) and its bake time (shaded)" in page
    assert "checkpoint 1 of 2: baked 30.0s" in page
    plain = roll_report.render(dict(state, checkpoints=None))
    assert 'class="checkpoint"' not in plain and "bake time" not in plain

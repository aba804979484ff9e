"""One deployment's batches with a fake client: learned timing, waits for other upgrade domains, what
another client did, what a 409 leads to."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import runner as roll_runner
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

from tests.unit.plugins.plugin_utils._roll.fakes import ConflictingClient, DownElsewhereClient, FakeClient, _runner, operation


def test_timing_learns_the_median_of_recent_durations():
    state = {}
    timing = roll_runner.Timing(state)
    assert timing.expected("operation") is None
    for seconds in (5.0, 5.2, 30.0, 4.9, 5.1):
        timing.learn("operation", seconds)
    assert timing.expected("operation") == 5.1
    assert roll_runner.Timing(state).expected("operation") == 5.1, "kept in the state, for the next round"
    for _roll in range(40):
        timing.learn("operation", 9.0)
    assert len(state["learned"]["operation"]) == roll_runner.Timing.KEEP and timing.expected("operation") == 9.0


@pytest.mark.parametrize("down_for, timeout, goes_on", [(95, 600, True), (10_000, 120, False)])
def test_a_batch_waits_while_another_domain_is_down_and_says_so_at_least_every_30s(tmp_path, down_for, timeout, goes_on):
    client = DownElsewhereClient(down_for)
    said = []
    runner = _runner(client, tmp_path, said, timeout)
    assert runner._wait_for_other_domains(0) is goes_on
    waits = [line for line in said if "upgrade domain 0 waits: Worker_IN_2 (upgrade domain 2) is BusyRole" in line]
    assert len(waits) >= min(down_for, timeout) // 30
    times = [0] + [float(line.split("(waited ")[1].split("s")[0]) for line in waits[1:]]
    assert all(b - a <= 30 for a, b in zip(times, times[1:])), times
    if goes_on:
        assert not runner.dep["stopped"] and client.now >= down_for
    else:
        assert runner.dep["stopped"] and "stayed down for 120s" in runner.dep["stop_reason"]
        assert client.now <= timeout + roll_runner.AVAILABILITY_POLL_MAX


def test_the_batchs_own_domain_and_instances_accepted_down_do_not_hold_it(tmp_path):
    client = DownElsewhereClient(10_000)
    runner = _runner(client, tmp_path, [], 60)
    assert runner._wait_for_other_domains(2) is True, "Worker_IN_2 is in the batch's own domain"
    runner.dep["accepted_down"] = ["worker_in_2"]
    assert runner._wait_for_other_domains(0) is True and client.now == 0


def test_an_operation_another_client_started_on_a_batch_instance_is_followed_not_sent(tmp_path):
    client = FakeClient(history=[operation("f" * 32, "Web_IN_1", "InProgress"),
                                 operation("e" * 32, "Worker_IN_1", "Failed")])
    said = []
    runner = _runner(client, tmp_path, said, 60)
    instances = [runner.state["instances"]["svc/svc-production/%s" % n] for n in ("web_in_1", "worker_in_1")]
    runner._adopt_from_history(instances)
    assert instances[0]["outcome"] == "started" and instances[0]["adopted"] and instances[0]["request_id"] == "f" * 32
    assert instances[1]["outcome"] == "pending", "a failed operation left its instance as it was: sent"


@pytest.mark.parametrize("history, why", [
    ([operation("not-an-id", "Web_IN_1", "InProgress")], "failed"),
    (None, "stopped"),
])
def test_after_a_409_nothing_is_sent_again_when_the_history_cannot_tell(tmp_path, history, why):
    client = ConflictingClient(0, history=history or [])
    if history is None:
        def unreadable(*args, **kwargs):
            raise roll_state.RolloutError("the listing broke off", code="BadResponse")
        client.list_subscription_operations = unreadable
    runner = _runner(client, tmp_path, [], 60)
    inst = runner.state["instances"]["svc/svc-production/web_in_1"]
    assert runner._send(inst, 1) is False
    assert client.sent == ["Web_IN_1"], "sent once, never again on a guess"
    assert runner.dep["stopped"] and (inst["outcome"] == "failed") == (why == "failed")


def test_a_wait_for_a_stuck_instance_says_which_its_status_and_the_limit_and_its_failure_names_the_status(tmp_path):
    client = DownElsewhereClient(10_000)  # Worker_IN_2 stays BusyRole
    said = []
    runner = _runner(client, tmp_path, said, 600)
    runner.options["ready_timeout"] = 100
    inst = runner.state["instances"]["svc/svc-production/worker_in_2"]
    inst.update(outcome="started", request_id="a" * 32)
    runner.wait_ready([inst])
    waits = [line for line in said if "waiting for Worker_IN_2 to be ReadyRole after its reimage: Worker_IN_2 is "
             "BusyRole" in line and "of 100s, rolling_reimage_ready_timeout" in line]
    times = [0] + [int(line.split("(")[-1].split("s so far")[0]) for line in waits] + [100]
    assert waits and all(b - a <= 30 for a, b in zip(times, times[1:])), said
    assert inst["outcome"] == "failed" and "not ReadyRole within 100s of its reimage: still BusyRole" in inst["error"]["message"]
    assert runner.dep["stopped"], "an instance still down stops its deployment"

"""The rolling reimage planner with a fake client: batching, preflight, resume, summary."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _rollout as rollout
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._client import ServiceManagementClient
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError

OPTIONS = {"fresh": False, "batch_size": 0, "max_failures": 0, "allow_unready": False, "operation_timeout": 60,
           "ready_timeout": 60, "max_parallel": 4, "poll_interval": 0.25, "max_requests_per_second": 20, "resume_window": 3600, "roll_id": "r1"}


class FakeClient:
    subscription_id = "00000000-0000-0000-0000-000000000001"

    def __init__(self, status=None, locked=False, dep_status="Running", history=()):
        self.status = status or {}
        self.locked = locked
        self.dep_status = dep_status
        self.history = list(history)
        self.sent = []

    def list_subscription_operations(self, start, end, object_id=None, result=None):
        return [dict(op) for op in self.history if result is None or op["status"] == result]

    # The real reading of the history, over the fake list above, on a service clock that agrees with ours.
    operation_history = ServiceManagementClient.operation_history
    service_now = ServiceManagementClient.service_now
    clock_offset = None

    def get_operation(self, request_id):
        for op in self.history:
            if op["request_id"] == request_id:
                return dict(op, error=None)
        raise AssertionError("unknown operation")

    wait_for_operation = None  # settling is covered by the end-to-end tests

    def get_deployment(self, service, slot=None, deployment_name=None):
        instances = [{"instance_name": "%s_IN_%d" % (role, k), "role_name": role, "upgrade_domain": k % 3,
                      "instance_status": self.status.get("%s_IN_%d" % (role, k), "ReadyRole")}
                     for role in ("Web", "Worker") for k in range(4)]
        return {"name": "%s-%s" % (service, slot or deployment_name), "slot": slot or "production",
                "locked": self.locked, "status": self.dep_status, "role_instances": instances}


def targets(names, service="svc", slot="production"):
    return [rollout.target_from_hostvars("h-" + n, {"cloud_service": service, "deployment_slot": slot,
                                                    "role_instance": n}) for n in names]


ALL = ["%s_IN_%d" % (r, k) for r in ("Web", "Worker") for k in range(4)]


def test_batches_follow_upgrade_domains_ascending(tmp_path):
    state = rollout.plan(FakeClient(), targets(ALL), OPTIONS, rollout.StateFile(str(tmp_path / "s.json")), print)
    batches = state["deployments"]["svc/svc-production"]["batches"]
    assert [b["upgrade_domain"] for b in batches] == [0, 1, 2]
    assert batches[0]["instances"] == ["Web_IN_0", "Web_IN_3", "Worker_IN_0", "Worker_IN_3"]
    assert state["rounds"] == 3


def test_batch_size_splits_but_never_mixes_upgrade_domains(tmp_path):
    options = dict(OPTIONS, batch_size=3)
    state = rollout.plan(FakeClient(), targets(ALL), options, rollout.StateFile(str(tmp_path / "s.json")), print)
    batches = state["deployments"]["svc/svc-production"]["batches"]
    assert [(b["upgrade_domain"], len(b["instances"])) for b in batches] == [(0, 3), (0, 1), (1, 2), (2, 2)]


def test_preflight_lists_every_problem(tmp_path):
    client = FakeClient(status={"Worker_IN_2": "BusyRole"}, locked=True, dep_status="RunningTransitioning")
    with pytest.raises(rollout.RolloutError) as info:
        rollout.plan(client, targets(["Web_IN_0", "Web_IN_9"]), OPTIONS, rollout.StateFile(str(tmp_path / "s")), print)
    text = info.value.message
    assert "is busy" in text and "Worker_IN_2" in text and "Web_IN_9 does not exist" in text
    assert not (tmp_path / "s").exists(), "nothing is recorded for a refused roll"


def test_two_deployments_are_planned_separately(tmp_path):
    both = targets(["Web_IN_0"]) + targets(["Web_IN_0", "Web_IN_1"], slot="staging")
    state = rollout.plan(FakeClient(), both, OPTIONS, rollout.StateFile(str(tmp_path / "s")), print)
    assert sorted(state["deployments"]) == ["svc/svc-production", "svc/svc-staging"]
    assert state["rounds"] == 2


def operation(request_id, instance, status, name="ReimageRoleInstance", deployment="svc-production"):
    return {"request_id": request_id, "name": name, "status": status, "started_time": "2026-01-01T00:00:00Z",
            "parameters": {"serviceName": "svc", "deploymentName": deployment, "roleInstanceName": instance}}


def test_resume_skips_what_the_service_history_shows_done_and_resends_what_failed(tmp_path):
    state_file = rollout.StateFile(str(tmp_path / "s.json"))
    client = FakeClient(history=[
        operation("a" * 32, "Web_IN_0", "Succeeded"), operation("b" * 32, "Web_IN_3", "Failed"),
        operation("c" * 32, "Worker_IN_0", "Succeeded", name="RebootRoleInstance"),
        operation("d" * 32, "Worker_IN_3", "Succeeded", deployment="other")])
    messages = []
    # Planned in check mode: settling what is in flight is the end-to-end tests' business.
    state = rollout.plan(client, targets(ALL), OPTIONS, state_file, messages.append, check_mode=True)
    assert state["instances"]["svc/svc-production/web_in_0"]["outcome"] == "done"
    assert state["instances"]["svc/svc-production/web_in_0"]["request_id"] == "a" * 32
    first = state["deployments"]["svc/svc-production"]["batches"][0]["instances"]
    assert first == ["Web_IN_3", "Worker_IN_0", "Worker_IN_3"], "failed, other kinds, other deployments: sent"
    bad = FakeClient(history=[operation("not-an-id", "Worker_IN_1", "Succeeded")])
    with pytest.raises(rollout.RolloutError, match="'not-an-id' is not an operation id"):
        rollout.plan(bad, targets(ALL), OPTIONS, state_file, print, check_mode=True)
    assert "1 instance(s) already reimaged by an earlier run of this roll" in messages[0]
    assert not (tmp_path / "s.json").exists(), "check mode writes nothing"
    outcomes = rollout.host_outcomes(state, check_mode=True)
    assert outcomes["h-Web_IN_0"]["outcome"] == "already_reimaged"
    assert outcomes["h-Web_IN_3"] == dict(outcomes["h-Web_IN_3"], outcome="would_reimage", round=1)
    fresh = rollout.plan(client, targets(ALL), dict(OPTIONS, fresh=True), state_file, print)
    assert fresh["resumed"] is False and len(fresh["deployments"]["svc/svc-production"]["batches"][0]["instances"]) == 4


def test_a_deployment_locked_by_another_operation_names_it(tmp_path):
    client = FakeClient(locked=True, history=[operation("e" * 32, "", "InProgress", name="ChangeDeploymentConfiguration")])
    with pytest.raises(rollout.RolloutError, match="operation e{32} \\(ChangeDeploymentConfiguration\\)"):
        rollout.plan(client, targets(["Web_IN_0"]), OPTIONS, rollout.StateFile(str(tmp_path / "s")), print)


def test_another_clients_operation_on_one_instance_is_waited_for_not_refused(tmp_path):
    """Locked by a reboot of Web_IN_2 from elsewhere, which is down: the plan says so and its batches wait."""
    client = FakeClient(locked=True, status={"Web_IN_2": "StoppingRole"},
                        history=[operation("e" * 32, "Web_IN_2", "InProgress", name="RebootRoleInstance")])
    notes = []
    state = rollout.plan(client, targets(["Web_IN_0"]), OPTIONS, rollout.StateFile(str(tmp_path / "s")), notes.append)
    text = "\n".join(notes)
    assert "RebootRoleInstance eeeeeeee" in text and "instance Web_IN_2 is StoppingRole after" in text
    assert state["deployments"]["svc/svc-production"]["accepted_down"] == []


def test_targets_accepted_down_are_rolled_first_and_their_domain_leads(tmp_path):
    client = FakeClient(status={"Web_IN_2": "CyclingRole", "Worker_IN_1": "BusyRole"})
    state = rollout.plan(client, targets(ALL), dict(OPTIONS, allow_unready=True), rollout.StateFile(str(tmp_path / "s")),
                         print)
    dep = state["deployments"]["svc/svc-production"]
    assert sorted(dep["accepted_down"]) == ["web_in_2", "worker_in_1"]
    assert [(b["upgrade_domain"], b["instances"]) for b in dep["batches"]] == [
        (1, ["Worker_IN_1", "Web_IN_1"]), (2, ["Web_IN_2", "Worker_IN_2"]),
        (0, ["Web_IN_0", "Web_IN_3", "Worker_IN_0", "Worker_IN_3"])]


def test_the_state_file_is_trusted_only_when_safe(tmp_path):
    folder = tmp_path / "state"
    state_file = rollout.StateFile(str(folder / "s.json"))
    state = rollout.plan(FakeClient(), targets(ALL), OPTIONS, state_file, print)
    assert oct(folder.stat().st_mode & 0o777) == "0o700" and oct((folder / "s.json").stat().st_mode & 0o777) == "0o600"
    assert state_file.load()["roll_id"] == rollout.roll_id(state["instances"].values())
    (folder / "s.json").chmod(0o620)
    with pytest.raises(rollout.RolloutError, match="writable by other users"):
        state_file.load()
    (folder / "s.json").chmod(0o600)
    folder.chmod(0o777)
    with pytest.raises(rollout.RolloutError, match="its folder is writable by other users"):
        state_file.load()
    folder.chmod(0o700)
    link = rollout.StateFile(str(folder / "link.json"))
    (folder / "link.json").symlink_to(folder / "s.json")
    with pytest.raises(rollout.RolloutError, match="symbolic link"):
        link.load()
    state["instances"]["svc/svc-production/web_in_0"]["request_id"] = "../../x"
    state_file.save(state)
    with pytest.raises(InputError, match="not an operation id"):
        state_file.load()


def test_summary_counts_and_table(tmp_path):
    state_file = rollout.StateFile(str(tmp_path / "s.json"))
    state = rollout.plan(FakeClient(), targets(["Web_IN_0", "Web_IN_1"]), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32, start=1.0, end=2.0)
    state["deployments"]["svc/svc-production"].update(stopped=True, stop_reason="Web_IN_1: boom")
    summary = rollout.summarize(state, state_file)
    assert summary["status"] == "failed" and summary["counts"] == {"done": 1, "failed": 0, "untouched": 1, "skipped": 0}
    assert summary["hosts"]["h-Web_IN_0"]["outcome"] == "reimaged"
    assert summary["hosts"]["h-Web_IN_1"]["outcome"] == "not_reimaged" and "boom" in summary["hosts"]["h-Web_IN_1"]["msg"]
    table = rollout.format_table(summary)
    assert "a" * 32 in table and "untouched" in table and "rolling reimage failed" in table


@pytest.mark.parametrize("hostvars,message", [
    ({"cloud_service": "svc"}, "does not name a role instance"),
    ({"cloud_service": "svc", "role_instance": "a/b", "deployment_slot": "production"}, "not a valid name"),
    ({"cloud_service": "svc", "role_instance": "W_IN_0", "deployment_slot": "blue"}, "not a slot"),
])
def test_bad_hostvars(hostvars, message):
    with pytest.raises(InputError, match=message):
        rollout.target_from_hostvars("h", hostvars)


def test_the_operation_is_part_of_the_roll_and_a_reimage_roll_keeps_its_id():
    both = targets(["Web_IN_0", "Web_IN_1"])
    ids = {kind: rollout.roll_id(both, kind) for kind in ("reimage", "reboot", "rebuild")}
    assert len(set(ids.values())) == 3
    assert ids["reimage"] == rollout.roll_id(both), "a reimage roll names no operation in its id"
    by_name = [{"cloud_service": "SVC", "deployment_name": "svc-Production", "instance": "WEB_in_0"},
               {"cloud_service": "svc", "deployment_name": "svc-production", "instance": "Web_IN_1"}]
    assert rollout.roll_id(by_name) == rollout.roll_id(
        [dict(t, deployment_name="svc-production") for t in targets(["Web_IN_1", "Web_IN_0"])]), \
        "the instances as the service names them, in any letter case, whichever way the hosts spell them"
    assert rollout.default_report_path("/x/roll-abc.json") == "/x/roll-abc.html"
    assert rollout.default_report_path("/x/roll.html") == "/x/roll.html.html", "never the state file itself"
    with pytest.raises(InputError, match="operation must be one of"):
        rollout.roll_id(both, "restart")


def test_a_rolling_reboot_resumes_from_reboots_only_and_speaks_of_reboots(tmp_path):
    state_file = rollout.StateFile(str(tmp_path / "s.json"))
    client = FakeClient(history=[operation("a" * 32, "Web_IN_0", "Succeeded"),
                                 operation("c" * 32, "Worker_IN_0", "Succeeded", name="RebootRoleInstance")])
    messages = []
    options = dict(OPTIONS, operation="reboot")
    state = rollout.plan(client, targets(ALL), options, state_file, messages.append, check_mode=True)
    assert state["kind"] == "reboot"
    assert state["instances"]["svc/svc-production/worker_in_0"]["outcome"] == "done", "its reboot counts"
    assert state["instances"]["svc/svc-production/web_in_0"]["outcome"] == "pending", "a reimage is no reboot"
    assert "1 instance(s) already rebooted by an earlier run of this roll" in messages[0]
    assert messages[-1].startswith("rolling reboot (check mode: nothing is sent)")
    outcomes = rollout.host_outcomes(state, check_mode=True)
    assert outcomes["h-Worker_IN_0"]["outcome"] == "already_rebooted"
    assert outcomes["h-Web_IN_0"]["outcome"] == "would_reboot" and "would be rebooted" in outcomes["h-Web_IN_0"]["msg"]
    assert {"would_reboot", "rebuilt", "reimaged"} <= rollout.CHANGED_OUTCOMES
    assert {"not_rebooted", "failed"} <= rollout.FAILED_OUTCOMES and "already_rebooted" not in rollout.FAILED_OUTCOMES


def test_a_state_file_of_another_operation_is_not_resumed(tmp_path):
    state_file = rollout.StateFile(str(tmp_path / "s.json"))
    state = rollout.plan(FakeClient(), targets(["Web_IN_0"]), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32, start=1.0, end=2.0)
    state_file.save(state)
    # Same roll id on purpose: only the recorded operation tells them apart.
    again = rollout.plan(FakeClient(), targets(["Web_IN_0"]), dict(OPTIONS, operation="rebuild"), state_file, print)
    assert again["instances"]["svc/svc-production/web_in_0"]["outcome"] == "pending"
    summary = rollout.summarize(again, state_file)
    assert summary["operation"] == "rebuild" and summary["hosts"]["h-Web_IN_0"]["outcome"] == "not_rebuilt"
    summary["report_path"] = "/tmp/roll.html"
    table = rollout.format_table(summary)
    assert "rolling rebuild failed" in table and "0 rebuilt" in table and table.endswith("report: /tmp/roll.html")


def test_timing_learns_the_median_of_recent_durations():
    state = {}
    timing = rollout.Timing(state)
    assert timing.expected("operation") is None
    for seconds in (5.0, 5.2, 30.0, 4.9, 5.1):
        timing.learn("operation", seconds)
    assert timing.expected("operation") == 5.1
    assert rollout.Timing(state).expected("operation") == 5.1, "kept in the state, for the next round"
    for _roll in range(40):
        timing.learn("operation", 9.0)
    assert len(state["learned"]["operation"]) == rollout.Timing.KEEP and timing.expected("operation") == 9.0


@pytest.mark.parametrize("status", ["InProgress", "Succeeded"])
def test_an_operation_id_the_parser_rejects_still_refuses_the_roll(tmp_path, status):
    """The XML parser drops an OperationId that is not an id (request_id None); the planner must still see
    that the history names an operation of this instance, and refuse rather than guess or follow None."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _asm_xml as asm_xml
    body = ('<SubscriptionOperationCollection xmlns="http://schemas.microsoft.com/windowsazure"><SubscriptionOperations>'
            '<SubscriptionOperation><OperationId>../../subscriptions</OperationId><OperationName>ReimageRoleInstance'
            '</OperationName><OperationParameters><OperationParameter><Name>deploymentName</Name><Value>svc-production'
            '</Value></OperationParameter><OperationParameter><Name>roleInstanceName</Name><Value>Web_IN_1</Value>'
            '</OperationParameter></OperationParameters><OperationStatus><Status>%s</Status></OperationStatus>'
            '<OperationStartedTime>2026-01-01T00:00:00Z</OperationStartedTime></SubscriptionOperation>'
            '</SubscriptionOperations></SubscriptionOperationCollection>' % status)
    parsed, _token = asm_xml.parse_subscription_operations(body)
    assert parsed[0]["request_id"] is None and parsed[0]["operation_id"] == "../../subscriptions"
    with pytest.raises(rollout.RolloutError, match=r"'\.\./\.\./subscriptions' is not an operation id"):
        rollout.plan(FakeClient(history=parsed), targets(ALL), OPTIONS, rollout.StateFile(str(tmp_path / "s.json")),
                     print, check_mode=True)


class DownElsewhereClient(FakeClient):
    """Worker_IN_2 (upgrade domain 2) is down for the first ``down_for`` seconds of a fake clock."""

    def __init__(self, down_for, **kwargs):
        super().__init__(**kwargs)
        self.now = 0.0
        self.down_for = down_for
        self.poll = rollout.PollSchedule(0.5, rollout.POLL_GROWTH)

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def get_deployment(self, service, slot=None, deployment_name=None):
        self.status = {"Worker_IN_2": "BusyRole"} if self.now < self.down_for else {}
        return super().get_deployment(service, slot, deployment_name)


def _runner(client, tmp_path, said, timeout):
    state = rollout.plan(FakeClient(), targets(ALL), dict(OPTIONS, availability_timeout=timeout),
                         rollout.StateFile(str(tmp_path / "s.json")), print)
    state["options"]["availability_timeout"] = timeout
    return rollout._DeploymentRunner(client, state, None, "svc/svc-production", state["options"], said.append)


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
        assert client.now <= timeout + rollout.AVAILABILITY_POLL_MAX


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


def test_allow_unready_never_accepts_an_instance_down_for_someone_elses_running_operation(tmp_path):
    client = FakeClient(locked=True, status={"Worker_IN_2": "StoppingRole"},
                        history=[operation("e" * 32, "Worker_IN_2", "InProgress", name="RebootRoleInstance")])
    state = rollout.plan(client, targets(["Web_IN_0"]), dict(OPTIONS, allow_unready=True),
                         rollout.StateFile(str(tmp_path / "s")), print)
    assert state["deployments"]["svc/svc-production"]["accepted_down"] == [], "the batches wait for it"


class ConflictingClient(DownElsewhereClient):
    """Answers the roll's POST with a 409 whose recheck the roll must answer; records what it would send."""

    def role_instance_operation(self, kind, service, instance, deployment_name=None, deadline=None, recheck=None,
                                on_lock_wait=None):
        self.sent.append(instance)
        instead = recheck("f" * 32)
        if instead:
            return instead
        self.sent.append(instance)  # sent again
        return "a" * 32


@pytest.mark.parametrize("history, why", [
    ([operation("not-an-id", "Web_IN_1", "InProgress")], "failed"),
    (None, "stopped"),
])
def test_after_a_409_nothing_is_sent_again_when_the_history_cannot_tell(tmp_path, history, why):
    client = ConflictingClient(0, history=history or [])
    if history is None:
        def unreadable(*args, **kwargs):
            raise rollout.RolloutError("the listing broke off", code="BadResponse")
        client.list_subscription_operations = unreadable
    runner = _runner(client, tmp_path, [], 60)
    inst = runner.state["instances"]["svc/svc-production/web_in_1"]
    assert runner._send(inst, 1) is False
    assert client.sent == ["Web_IN_1"], "sent once, never again on a guess"
    assert runner.dep["stopped"] and (inst["outcome"] == "failed") == (why == "failed")

"""Planning a roll with a fake client: batches, preflight, resume."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import kinds as roll_kinds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import outcome as roll_outcome
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

from tests.unit.plugins.plugin_utils._roll.fakes import ALL, OPTIONS, FakeClient, operation, targets


def test_batches_follow_upgrade_domains_ascending(tmp_path):
    state = roll_plan.plan(FakeClient(), targets(ALL), OPTIONS, roll_state.StateFile(str(tmp_path / "s.json")), print)
    batches = state["deployments"]["svc/svc-production"]["batches"]
    assert [b["upgrade_domain"] for b in batches] == [0, 1, 2]
    assert batches[0]["instances"] == ["Web_IN_0", "Web_IN_3", "Worker_IN_0", "Worker_IN_3"]
    assert state["rounds"] == 3


def test_batch_size_splits_but_never_mixes_upgrade_domains(tmp_path):
    options = dict(OPTIONS, batch_size=3)
    state = roll_plan.plan(FakeClient(), targets(ALL), options, roll_state.StateFile(str(tmp_path / "s.json")), print)
    batches = state["deployments"]["svc/svc-production"]["batches"]
    assert [(b["upgrade_domain"], len(b["instances"])) for b in batches] == [(0, 3), (0, 1), (1, 2), (2, 2)]


def test_preflight_lists_every_problem(tmp_path):
    client = FakeClient(status={"Worker_IN_2": "BusyRole"}, locked=True, dep_status="RunningTransitioning")
    with pytest.raises(roll_state.RolloutError) as info:
        roll_plan.plan(client, targets(["Web_IN_0", "Web_IN_9"]), OPTIONS, roll_state.StateFile(str(tmp_path / "s")), print)
    text = info.value.message
    assert "is busy" in text and "Worker_IN_2" in text and "Web_IN_9 does not exist" in text
    assert not (tmp_path / "s").exists(), "nothing is recorded for a refused roll"


def test_two_deployments_are_planned_separately(tmp_path):
    both = targets(["Web_IN_0"]) + targets(["Web_IN_0", "Web_IN_1"], slot="staging")
    state = roll_plan.plan(FakeClient(), both, OPTIONS, roll_state.StateFile(str(tmp_path / "s")), print)
    assert sorted(state["deployments"]) == ["svc/svc-production", "svc/svc-staging"]
    assert state["rounds"] == 2


def test_resume_skips_what_the_service_history_shows_done_and_resends_what_failed(tmp_path):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    client = FakeClient(history=[
        operation("a" * 32, "Web_IN_0", "Succeeded"), operation("b" * 32, "Web_IN_3", "Failed"),
        operation("c" * 32, "Worker_IN_0", "Succeeded", name="RebootRoleInstance"),
        operation("d" * 32, "Worker_IN_3", "Succeeded", deployment="other")])
    messages = []
    # Planned in check mode: settling what is in flight is the end-to-end tests' business.
    state = roll_plan.plan(client, targets(ALL), OPTIONS, state_file, messages.append, check_mode=True)
    assert state["instances"]["svc/svc-production/web_in_0"]["outcome"] == "done"
    assert state["instances"]["svc/svc-production/web_in_0"]["request_id"] == "a" * 32
    first = state["deployments"]["svc/svc-production"]["batches"][0]["instances"]
    assert first == ["Web_IN_3", "Worker_IN_0", "Worker_IN_3"], "failed, other kinds, other deployments: sent"
    bad = FakeClient(history=[operation("not-an-id", "Worker_IN_1", "Succeeded")])
    with pytest.raises(roll_state.RolloutError, match="'not-an-id' is not an operation id"):
        roll_plan.plan(bad, targets(ALL), OPTIONS, state_file, print, check_mode=True)
    assert "1 instance(s) already reimaged by an earlier run of this roll" in messages[0]
    assert not (tmp_path / "s.json").exists(), "check mode writes nothing"
    outcomes = roll_outcome.host_outcomes(state, check_mode=True)
    assert outcomes["h-Web_IN_0"]["outcome"] == "already_reimaged"
    assert outcomes["h-Web_IN_3"] == dict(outcomes["h-Web_IN_3"], outcome="would_reimage", round=1)
    fresh = roll_plan.plan(client, targets(ALL), dict(OPTIONS, fresh=True), state_file, print)
    assert fresh["resumed"] is False and len(fresh["deployments"]["svc/svc-production"]["batches"][0]["instances"]) == 4


def test_a_deployment_locked_by_another_operation_names_it(tmp_path):
    client = FakeClient(locked=True, history=[operation("e" * 32, "", "InProgress", name="ChangeDeploymentConfiguration")])
    with pytest.raises(roll_state.RolloutError, match="operation e{32} \\(ChangeDeploymentConfiguration\\)"):
        roll_plan.plan(client, targets(["Web_IN_0"]), OPTIONS, roll_state.StateFile(str(tmp_path / "s")), print)


def test_another_clients_operation_on_one_instance_is_waited_for_not_refused(tmp_path):
    """Locked by a reboot of Web_IN_2 from elsewhere, which is down: the plan says so and its batches wait."""
    client = FakeClient(locked=True, status={"Web_IN_2": "StoppingRole"},
                        history=[operation("e" * 32, "Web_IN_2", "InProgress", name="RebootRoleInstance")])
    notes = []
    state = roll_plan.plan(client, targets(["Web_IN_0"]), OPTIONS, roll_state.StateFile(str(tmp_path / "s")), notes.append)
    text = "\n".join(notes)
    assert "RebootRoleInstance eeeeeeee" in text and "instance Web_IN_2 is StoppingRole after" in text
    assert state["deployments"]["svc/svc-production"]["accepted_down"] == []


def test_targets_accepted_down_are_rolled_first_and_their_domain_leads(tmp_path):
    client = FakeClient(status={"Web_IN_2": "CyclingRole", "Worker_IN_1": "BusyRole"})
    state = roll_plan.plan(client, targets(ALL), dict(OPTIONS, allow_unready=True), roll_state.StateFile(str(tmp_path / "s")),
                           print)
    dep = state["deployments"]["svc/svc-production"]
    assert sorted(dep["accepted_down"]) == ["web_in_2", "worker_in_1"]
    assert [(b["upgrade_domain"], b["instances"]) for b in dep["batches"]] == [
        (1, ["Worker_IN_1", "Web_IN_1"]), (2, ["Web_IN_2", "Worker_IN_2"]),
        (0, ["Web_IN_0", "Web_IN_3", "Worker_IN_0", "Worker_IN_3"])]


def test_a_rolling_reboot_resumes_from_reboots_only_and_speaks_of_reboots(tmp_path):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    client = FakeClient(history=[operation("a" * 32, "Web_IN_0", "Succeeded"),
                                 operation("c" * 32, "Worker_IN_0", "Succeeded", name="RebootRoleInstance")])
    messages = []
    options = dict(OPTIONS, operation="reboot")
    state = roll_plan.plan(client, targets(ALL), options, state_file, messages.append, check_mode=True)
    assert state["kind"] == "reboot"
    assert state["instances"]["svc/svc-production/worker_in_0"]["outcome"] == "done", "its reboot counts"
    assert state["instances"]["svc/svc-production/web_in_0"]["outcome"] == "pending", "a reimage is no reboot"
    assert "1 instance(s) already rebooted by an earlier run of this roll" in messages[0]
    assert messages[-1].startswith("rolling reboot (check mode: nothing is sent)")
    outcomes = roll_outcome.host_outcomes(state, check_mode=True)
    assert outcomes["h-Worker_IN_0"]["outcome"] == "already_rebooted"
    assert outcomes["h-Web_IN_0"]["outcome"] == "would_reboot" and "would be rebooted" in outcomes["h-Web_IN_0"]["msg"]
    assert {"would_reboot", "rebuilt", "reimaged"} <= roll_kinds.CHANGED_OUTCOMES
    assert {"not_rebooted", "failed"} <= roll_kinds.FAILED_OUTCOMES and "already_rebooted" not in roll_kinds.FAILED_OUTCOMES


def test_a_state_file_of_another_operation_is_not_resumed(tmp_path):
    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(["Web_IN_0"]), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32, start=1.0, end=2.0)
    state_file.save(state)
    # Same roll id on purpose: only the recorded operation tells them apart.
    again = roll_plan.plan(FakeClient(), targets(["Web_IN_0"]), dict(OPTIONS, operation="rebuild"), state_file, print)
    assert again["instances"]["svc/svc-production/web_in_0"]["outcome"] == "pending"
    summary = roll_outcome.summarize(again, state_file)
    assert summary["operation"] == "rebuild" and summary["hosts"]["h-Web_IN_0"]["outcome"] == "not_rebuilt"
    summary["report_path"] = "/tmp/roll.html"
    table = roll_outcome.format_table(summary)
    assert "rolling rebuild failed" in table and "0 rebuilt" in table and table.endswith("report: /tmp/roll.html")


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
    with pytest.raises(roll_state.RolloutError, match=r"'\.\./\.\./subscriptions' is not an operation id"):
        roll_plan.plan(FakeClient(history=parsed), targets(ALL), OPTIONS, roll_state.StateFile(str(tmp_path / "s.json")),
                       print, check_mode=True)


def test_allow_unready_never_accepts_an_instance_down_for_someone_elses_running_operation(tmp_path):
    client = FakeClient(locked=True, status={"Worker_IN_2": "StoppingRole"},
                        history=[operation("e" * 32, "Worker_IN_2", "InProgress", name="RebootRoleInstance")])
    state = roll_plan.plan(client, targets(["Web_IN_0"]), dict(OPTIONS, allow_unready=True),
                           roll_state.StateFile(str(tmp_path / "s")), print)
    assert state["deployments"]["svc/svc-production"]["accepted_down"] == [], "the batches wait for it"


def test_the_services_statuses_in_a_refused_plan_are_shown_escaped(tmp_path):
    """The service's text in the roll's messages: control and bidi characters shown escaped (issue 24)."""
    client = FakeClient(status={"Worker_IN_2": "Busy\u202eRole"})
    with pytest.raises(roll_state.RolloutError) as info:
        roll_plan.plan(client, targets(["Web_IN_0"]), OPTIONS, roll_state.StateFile(str(tmp_path / "s")), print)
    assert "instance Worker_IN_2 is Busy\\u202eRole" in info.value.message and "\u202e" not in info.value.message


def test_a_done_the_service_does_not_know_is_rolled_again_and_what_counts_as_done_is_listed(tmp_path):
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import ServiceManagementError

    class ForgetfulClient(FakeClient):
        def get_operation(self, request_id):
            if request_id == "b" * 32:
                return {"request_id": request_id, "status": "Succeeded", "error": None}
            raise ServiceManagementError("not found", code="ResourceNotFound", http_status=404)

    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(["Web_IN_0", "Web_IN_1", "Web_IN_2"]), OPTIONS, state_file, print)
    now = roll_state.now()
    for name, rid in (("web_in_0", "a" * 32), ("web_in_1", "b" * 32)):
        state["instances"]["svc/svc-production/" + name].update(outcome="done", request_id=rid, start=now - 60, end=now)
    state_file.save(state)
    said = []
    client = ForgetfulClient(history=[operation("c" * 32, "Web_IN_2", "Succeeded")])
    again = roll_plan.plan(client, targets(["Web_IN_0", "Web_IN_1", "Web_IN_2"]), OPTIONS, state_file, said.append,
                           check_mode=True)
    outcomes = {k.rsplit("/", 1)[1]: i["outcome"] for k, i in again["instances"].items()}
    assert outcomes == {"web_in_0": "pending", "web_in_1": "done", "web_in_2": "done"}
    text = "\n".join(said)
    assert ("svc/svc-production/Web_IN_0: this controller's record of the roll (%s) says it was reimaged by operation %s"
            % (state_file.path, "a" * 32)) in text and "so it is reimaged again" in text
    assert "2 instance(s) count as already reimaged and are not sent again" in text
    assert "-e rolling_reimage_since=20" in text
    assert "svc/svc-production/Web_IN_1: operation %s, started" % ("b" * 32) in text and "sent by an earlier run" in text
    assert ("svc/svc-production/Web_IN_2: operation %s" % ("c" * 32)) in text and "not sent by this roll" in text


def test_a_done_the_service_cannot_be_asked_about_refuses_the_roll_after_one_request(tmp_path):
    """Only the service's "no such operation" rolls an instance again; any other failure to ask refuses the roll."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import ServiceManagementError

    class FlakyClient(FakeClient):
        asked = 0

        def get_operation(self, request_id):
            FlakyClient.asked += 1
            raise ServiceManagementError("Service Unavailable", code="ServiceUnavailable", http_status=503)

    state_file = roll_state.StateFile(str(tmp_path / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(["Web_IN_0"]), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32,
                                                             start=roll_state.now() - 60, end=roll_state.now())
    state_file.save(state)
    with pytest.raises(roll_state.RolloutError, match="whether it happened is unknown") as info:
        roll_plan.plan(FlakyClient(), targets(["Web_IN_0"]), OPTIONS, state_file, print, check_mode=True)
    assert FlakyClient.asked == 1 and info.value.message.count("cannot read operation") == 1

"""The reimage_rollout action's own contract: each step's result, the strategy check, plan refusals (nothing built,
nothing sent), rolling_reimage_connection checking, check mode. The engine and the client are stubs here; the
end-to-end suite (tests/e2e) runs a real roll against the emulator."""
import re
from types import SimpleNamespace
from unittest import mock

import pytest
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.azure_classic.cloud_services.plugins.action import reimage_rollout as action_plugin
from ansible_collections.azure_classic.cloud_services.plugins.action.reimage_rollout import ActionModule
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import CONNECTION_ARGUMENT_SPEC
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._rollout_args import ROLLOUT_ARGUMENT_SPEC
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import outcome as roll_outcome
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import rounds as roll_rounds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state
from ansible_collections.azure_classic.cloud_services.tests.unit.plugins.modules.utils import CONNECTION_ENV

PASSWORD = "Pw-never-shown-7f3a"
HOSTVARS = {
    "web0": {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"},
    "web1": {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_1"},
    "db0": {"cloud_service": "contoso-db", "deployment_name": "contoso-db-1", "role_instance": "WorkerRole1_IN_0"},
}
TASK_VARS = {"hostvars": HOSTVARS, "ansible_play_batch": ["web0", "web1"], "ansible_play_hosts_all": ["web0", "web1"]}


def make_action(args, check_mode=False, diff=False, strategy="linear"):
    """An ActionModule as the task executor makes one, with only what this action reads filled in."""
    task = mock.MagicMock()
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = check_mode
    task.diff = diff
    task.action = "azure_classic.cloud_services.reimage_rollout"
    task.get_play.return_value = SimpleNamespace(strategy=strategy)
    play_context = mock.MagicMock()
    play_context.check_mode = check_mode
    play_context.diff = diff
    connection = mock.MagicMock()
    connection._shell.tmpdir = None
    return ActionModule(task, connection, play_context, loader=mock.MagicMock(), templar=mock.MagicMock(),
                        shared_loader_obj=mock.MagicMock())


def run_step(args, task_vars=None, **kwargs):
    return make_action(args, **kwargs).run(task_vars=TASK_VARS if task_vars is None else task_vars)


class Recorder:
    """Stands for a function: records its calls, returns ``value`` or raises ``error``."""

    def __init__(self, value=None, error=None):
        self.value = value
        self.error = error
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.value


class StubClient:
    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


@pytest.fixture(autouse=True)
def engine(monkeypatch):
    """Nothing here reaches a real client or the real engine unless a test says so: build_client and every engine
    entry point record their calls; ``engine.built`` lists the options each client was built from."""
    for name in CONNECTION_ENV:
        monkeypatch.delenv(name, raising=False)
    client = StubClient()
    stubs = SimpleNamespace(client=client, built=[])

    def build_client(options, warn=None, poll=None, rate_limiter=None):
        stubs.built.append({"options": dict(options), "poll": poll, "rate_limiter": rate_limiter})
        return client

    monkeypatch.setattr(action_plugin, "build_client", build_client)
    for module, name in ((roll_plan, "plan"), (roll_rounds, "run_round"), (roll_rounds, "run_all_rounds"),
                         (roll_rounds, "stop_all"), (roll_outcome, "summarize")):
        recorder = Recorder(error=AssertionError("%s was not expected" % name))
        setattr(stubs, name, recorder)
        monkeypatch.setattr(module, name, recorder)
    return stubs


# -- report --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("outcome, changed, failed", [
    ("reimaged", True, False), ("rebooted", True, False), ("rebuilt", True, False),
    ("already_reimaged", False, False), ("already_rebooted", False, False), ("already_rebuilt", False, False),
    ("failed", False, True), ("not_reimaged", False, True), ("not_rebooted", False, True), ("not_rebuilt", False, True),
    ("duplicate", False, False), ("in_progress", False, False),
])
def test_report_turns_each_outcome_into_this_hosts_result(outcome, changed, failed, engine):
    record = {"outcome": outcome, "msg": "contoso-web/production/WebRole1_IN_0: %s" % outcome,
              "instance": "contoso-web/production/WebRole1_IN_0 (upgrade domain 0)", "request_id": "a" * 32,
              "operation": "reboot"}
    result = run_step({"step": "report", "outcome": record}, diff=True)
    assert result["changed"] is changed
    assert result.get("failed", False) is failed
    assert "skipped" not in result and "diff" not in result
    if failed:  # the callback prints a failure's whole result: its message and outcome, nothing the table has
        assert {k: v for k, v in result.items() if not k.startswith("_ansible")} == {
            "changed": False, "failed": True, "outcome": outcome, "msg": record["msg"]}
    else:
        assert (result["outcome"], result["msg"], result["instance"], result["request_id"], result["operation"]) == (
            outcome, record["msg"], record["instance"], "a" * 32, "reboot")
    assert engine.built == []


def test_report_of_a_failure_is_its_message_and_outcome():
    record = {"outcome": "failed", "msg": "x: the reimage did not finish", "code": "InternalError"}
    result = run_step({"step": "report", "outcome": record})
    assert result["failed"] is True and result["msg"] == record["msg"] and result["outcome"] == "failed"
    assert "error_code" not in result and "instance" not in result


@pytest.mark.parametrize("deferred", [True, False])
def test_the_rolls_lines_come_under_this_tasks_heading(monkeypatch, deferred):
    """With skipped (or ok) hosts hidden, the stdout callback prints a task's heading only with its result: the
    action prints it first, once, before its first line."""
    shown = []
    monkeypatch.setattr(action_plugin, "_headings_deferred", lambda: deferred)
    monkeypatch.setattr(action_plugin.display, "banner", lambda text: shown.append(("banner", text)))
    monkeypatch.setattr(action_plugin.display, "display", lambda text: shown.append(("line", text)))
    action = make_action({"step": "rounds"})
    action._task.get_name.return_value = "rolling_reimage : Run every round "
    action._say("batch 1/3 started")
    action._say("batch 1/3 done")
    heading = [("banner", "TASK [rolling_reimage : Run every round]")] if deferred else []
    assert shown == heading + [("line", "batch 1/3 started"), ("line", "batch 1/3 done")]


@pytest.mark.parametrize("options, deferred", [
    ({"display_skipped_hosts": True, "display_ok_hosts": True}, False),
    ({"display_skipped_hosts": False, "display_ok_hosts": True}, True),
    ({"display_skipped_hosts": True, "display_ok_hosts": False}, True),
    (None, False),
])
def test_whether_the_stdout_callback_holds_headings_back(monkeypatch, options, deferred):
    def get_config_value(name, plugin_type=None, plugin_name=None):
        assert plugin_type == "callback"
        if options is None:
            raise AnsibleError("No config definition exists for %r for %r callback plugin" % (name, plugin_name))
        return options[name]

    monkeypatch.setattr(action_plugin.C.config, "get_config_value", get_config_value)
    assert action_plugin._headings_deferred() is deferred


def test_report_without_an_outcome_is_skipped():
    result = run_step({"step": "report"})
    assert result["skipped"] is True and result["changed"] is False
    assert result["skip_reason"] == "this host is not a target of the roll"


WOULD = {"outcome": "would_rebuild", "instance": "contoso-web/production/WebRole1_IN_1 (upgrade domain 1)", "round": 2,
         "operation": "rebuild", "msg": "would be rebuilt in round 2"}


def test_report_in_check_mode_shows_a_diff_when_asked():
    result = run_step({"step": "report", "outcome": WOULD}, check_mode=True, diff=True)
    assert result["changed"] is True and "failed" not in result
    assert result["diff"] == {"before": "%s: as it is\n" % WOULD["instance"],
                              "after": "%s: rebuilt in round 2\n" % WOULD["instance"]}


@pytest.mark.parametrize("check_mode, diff", [(True, False), (False, True)])
def test_report_shows_no_diff_outside_check_mode_with_diff(check_mode, diff):
    assert "diff" not in run_step({"step": "report", "outcome": WOULD}, check_mode=check_mode, diff=diff)


# -- the strategy ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["free", "host_pinned", "ansible.builtin.free", "ansible.builtin.host_pinned"])
@pytest.mark.parametrize("step", ["round", "rounds"])
def test_round_steps_refuse_a_strategy_other_than_linear(strategy, step, engine, tmp_path):
    for check_mode in (False, True):
        with pytest.raises(AnsibleError, match="needs the linear strategy, and this play uses '%s'" % strategy) as caught:
            run_step({"step": step, "round": 0, "state_path": str(tmp_path / "roll.json")}, strategy=strategy,
                     check_mode=check_mode)
        assert "Nothing was sent" in caught.value.message
    assert engine.built == [] and engine.run_round.calls == [] and engine.run_all_rounds.calls == []


@pytest.mark.parametrize("strategy", ["free", "host_pinned"])
def test_plan_under_another_strategy_is_refused_not_failed(strategy, engine):
    result = run_step({"step": "plan"}, strategy=strategy)
    assert "needs the linear strategy" in result["refused"]
    assert result["rounds"] == 0 and result["changed"] is False and "failed" not in result
    assert engine.built == [] and engine.plan.calls == []


def test_the_default_strategy_is_checked_when_the_play_sets_none(monkeypatch, engine):
    monkeypatch.setattr(action_plugin.C, "DEFAULT_STRATEGY", "free")
    with pytest.raises(AnsibleError, match="this play uses 'free'"):
        run_step({"step": "rounds"}, strategy=None, check_mode=True)
    monkeypatch.setattr(action_plugin.C, "DEFAULT_STRATEGY", "linear")
    assert run_step({"step": "rounds"}, strategy=None, check_mode=True)["skipped"] is True


@pytest.mark.parametrize("strategy", ["linear", "ansible.builtin.linear", "debug"])
def test_linear_and_debug_strategies_run_the_round_steps(strategy):
    assert run_step({"step": "round", "round": 0}, strategy=strategy, check_mode=True)["skipped"] is True


# -- check mode on the steps after the plan ------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["round", "rounds", "abort", "finish"])
def test_check_mode_skips_the_steps_after_the_plan_without_loading_state(step, monkeypatch, engine):
    monkeypatch.setattr(roll_state, "StateFile", Recorder(error=AssertionError("the state was loaded")))
    result = run_step({"step": step, "round": 0, "state_path": "/nonexistent/roll.json"}, check_mode=True)
    assert result["skipped"] is True and result["changed"] is False
    assert result["msg"] == "check mode: the %s step sends nothing" % step
    assert engine.built == [] and engine.stop_all.calls == []


def test_outside_check_mode_a_missing_state_file_is_an_error(tmp_path):
    with pytest.raises(AnsibleError, match="roll.json is gone .removed while the roll ran.., so this step cannot go on"):
        run_step({"step": "round", "round": 0, "state_path": str(tmp_path / "roll.json")})
    with pytest.raises(AnsibleError, match="state_path is required after the plan step"):
        run_step({"step": "finish"})
    with pytest.raises(AnsibleError, match="was not given the plan's window"):
        run_step({"step": "finish", "state_path": str(tmp_path / "roll.json")})


def test_abort_without_a_state_file_has_nothing_to_stop(tmp_path, engine):
    result = run_step({"step": "abort", "state_path": str(tmp_path / "roll.json"), "reason": "x"})
    assert result.get("failed") is not True and engine.stop_all.calls == []


def test_finish_without_a_state_file_rebuilds_the_outcomes_from_the_service(tmp_path, monkeypatch, engine):
    state = {"version": roll_state.STATE_VERSION, "kind": "reimage", "rebuilt": True, "instances": {}, "hosts": {},
             "deployments": {}, "started": 1.0}
    rebuild = Recorder(value=state)
    monkeypatch.setattr(roll_plan, "rebuild", rebuild)
    engine.summarize.error = None
    engine.summarize.value = {"status": "complete", "operation": "reimage", "elapsed": 1.0, "instances": [],
                              "counts": {"done": 0, "failed": 0, "untouched": 0, "skipped": 0},
                              "hosts": {"web0": {"outcome": "reimaged"}}, "rebuilt": True}
    roll = {"roll_id": "abc", "window_start": 100.0, "counts_since": 100.0, "service_started": 110.0, "started": 1.0}
    result = run_step({"step": "finish", "state_path": str(tmp_path / "roll.json"), "roll": roll,
                       "report_path": str(tmp_path / "r.html")})
    (_client, targets, options, given_roll, _say), _kwargs = rebuild.calls[0]
    given_roll = {k: v for k, v in given_roll.items() if v is not None}
    assert [t["host"] for t in targets] == ["web0", "web1"] and given_roll == roll and options["operation"] == "reimage"
    assert result["hosts"] == {"web0": {"outcome": "reimaged"}} and engine.client.closed == 1


# -- the steps after the plan, with a real state file and a stubbed engine --------------------------------------------
def saved_state(tmp_path, rounds=2, stopped=None):
    state = {"version": roll_state.STATE_VERSION, "kind": "reimage", "rounds": rounds, "instances": {},
             "options": {"poll_interval": 0.5, "max_requests_per_second": 10},
             "deployments": {"contoso-web/production": {"stopped": bool(stopped), "stop_reason": stopped}}}
    state_file = roll_state.StateFile(str(tmp_path / "roll.json"))
    state_file.save(state)
    return state_file.path


def test_rounds_without_a_health_gate_run_every_round_in_one_go(tmp_path, engine):
    engine.run_all_rounds.error, engine.run_all_rounds.value = None, 1
    path = saved_state(tmp_path, stopped="3 failures")
    result = run_step({"step": "rounds", "state_path": path, "connection": {"timeout": "30"}})
    assert result == {"changed": False, "deployments_rolled": 1,
                      "stopped_deployments": {"contoso-web/production": "3 failures"}}
    factory, state, state_file = engine.run_all_rounds.calls[0][0][:3]
    assert state["rounds"] == 2 and state_file.path == path
    assert engine.built == []
    # Each engine thread's client: the task's connection options, the roll's poll interval and request-rate ceiling.
    factory()
    factory(min_interval=2.0)
    assert [b["options"]["timeout"] for b in engine.built] == [30, 30]
    assert [b["poll"].min_interval for b in engine.built] == [0.5, 2.0]
    assert engine.built[0]["rate_limiter"] is engine.built[1]["rate_limiter"]
    assert engine.built[0]["rate_limiter"].interval == pytest.approx(1 / (10 * 0.9))


def test_rounds_with_a_health_gate_ask_it_after_each_round_that_ran(tmp_path, monkeypatch, engine):
    engine.run_round.error, engine.run_round.value = None, 1
    gate = Recorder(value=(False, "health gate: https://health.example/ answered 503 within 5s"))
    monkeypatch.setattr(action_plugin.health_gate, "wait_healthy", gate)
    engine.stop_all.error = None
    path = saved_state(tmp_path, rounds=3)
    run_step({"step": "rounds", "state_path": path, "health_url": "https://health.example/", "health_timeout": 5})
    assert [call[0][3] for call in engine.run_round.calls] == [0, 1, 2]
    assert engine.run_all_rounds.calls == []
    assert [call[0][:3] for call in gate.calls] == [("https://health.example/", [200], 5)] * 3
    assert [call[0][2] for call in engine.stop_all.calls] == [gate.value[1]] * 3


def test_a_bad_health_url_stops_a_round_before_it_runs(tmp_path, engine):
    path = saved_state(tmp_path)
    result = run_step({"step": "round", "round": 0, "state_path": path, "health_url": "http://[::1"})
    assert result["failed"] and "health_url 'http://[::1' is not a valid URL" in result["msg"]
    assert engine.run_round.calls == [] and engine.built == []


@pytest.mark.parametrize("number", [None, -1, 2])
def test_round_needs_a_number_the_plan_has(tmp_path, engine, number):
    with pytest.raises(AnsibleError, match=r"round must be 0 to 1 with step=round \(the plan has 2 rounds\)"):
        run_step({"step": "round", "round": number, "state_path": saved_state(tmp_path, rounds=2)})
    assert engine.run_round.calls == []


@pytest.mark.parametrize("reason, expected", [(None, "stopped by a failed task"), ("operator said so", "operator said so")])
def test_abort_stops_every_deployment_with_its_reason(reason, expected, tmp_path, engine):
    engine.stop_all.error = None
    assert run_step({"step": "abort", "state_path": saved_state(tmp_path), "reason": reason}) == {"changed": False}
    assert engine.stop_all.calls[0][0][2] == expected


def test_finish_lists_failures_of_hosts_outside_the_play(tmp_path, monkeypatch, engine):
    hosts = {"web0": {"outcome": "reimaged"}, "web1": {"outcome": "failed"}, "db0": {"outcome": "not_reimaged"},
             "db1": {"outcome": "already_reimaged"}}
    engine.summarize.error, engine.summarize.value = None, {"status": "failed", "hosts": hosts}
    monkeypatch.setattr(roll_outcome, "format_table", Recorder(value="table"))
    writer = Recorder(error=PermissionError(13, "Permission denied"))
    monkeypatch.setattr(action_plugin.roll_report, "write", writer)
    path = saved_state(tmp_path)
    result = run_step({"step": "finish", "state_path": path})
    assert result["failed_elsewhere"] == ["db0"]
    assert result["hosts"] == hosts and "hosts" not in result["summary"]
    assert result["changed"] is False and "failed" not in result
    # A report that cannot be written is a warning and a null path, never a lost summary.
    assert result["summary"]["report_path"] is None
    # Each run's report is its own, named after the state file and the run: the next run never overwrites it.
    assert re.fullmatch(re.escape(str(tmp_path / "roll-")) + r"\d{8}T\d{6}Z-[0-9a-f]{4}\.html", writer.calls[0][0][1])


# -- the plan ----------------------------------------------------------------------------------------------------------
def planned_state(kind="reimage"):
    instances = {}
    for number, host in enumerate(("web0", "web1")):
        instances["contoso-web/production/WebRole1_IN_%d" % number] = {
            "host": host, "deployment": "contoso-web/production", "instance": "WebRole1_IN_%d" % number,
            "upgrade_domain": number, "round": number, "request_id": None, "outcome": "pending"}
    return {"kind": kind, "rounds": 2, "resumed": False, "instances": instances,
            "hosts": {inst["host"]: key for key, inst in instances.items()},
            "deployments": {"contoso-web/production": {
                "stopped": False, "stop_reason": None,
                "batches": [{"upgrade_domain": 0, "instances": ["WebRole1_IN_0"]},
                            {"upgrade_domain": 1, "instances": ["WebRole1_IN_1"]}]}}}


def test_plan_builds_one_client_from_the_checked_options_plans_and_closes_it(tmp_path, engine):
    engine.plan.error, engine.plan.value = None, planned_state("reboot")
    args = {"step": "plan", "operation": "reboot", "state_path": str(tmp_path / "roll.json"), "since": "1700000000",
            "max_requests_per_second": 10, "timeout": 45, "connection": {"validate_certs": "no"}}
    result = run_step(args)
    assert (result["operation"], result["rounds"], result["instances"], result["resumed"]) == ("reboot", 2, 2, False)
    assert result["state_path"] == str(tmp_path / "roll.json")
    assert sorted(result["hosts"]) == ["web0", "web1"] and "diff" not in result and "refused" not in result
    assert len(engine.built) == 1 and engine.client.closed == 1
    assert engine.built[0]["options"]["timeout"] == 45 and engine.built[0]["options"]["validate_certs"] is False
    client, targets, options, state_file, _say = engine.plan.calls[0][0]
    assert client is engine.client and engine.plan.calls[0][1] == {"check_mode": False}
    assert [t["host"] for t in targets] == ["web0", "web1"]
    assert options["operation"] == "reboot" and options["since"] == 1700000000.0
    assert "roll_id" not in options, "the plan names the roll once it has read the instances"
    assert state_file.path == str(tmp_path / "roll.json")


def test_plan_takes_the_hosts_argument_over_the_play_batch(tmp_path, engine):
    engine.plan.error, engine.plan.value = None, planned_state()
    run_step({"step": "plan", "hosts": ["db0"], "state_path": str(tmp_path / "roll.json"),
              "since": "2023-11-14T22:13:20Z"})
    targets, options = engine.plan.calls[0][0][1:3]
    assert targets == [{"host": "db0", "cloud_service": "contoso-db", "deployment_name": "contoso-db-1",
                        "deployment_slot": None, "role_instance": "WorkerRole1_IN_0"}]
    assert options["since"] == 1700000000


def test_plan_in_check_mode_shows_the_plan_as_a_diff(tmp_path, engine):
    engine.plan.error, engine.plan.value = None, planned_state("rebuild")
    result = run_step({"step": "plan", "operation": "rebuild", "state_path": str(tmp_path / "roll.json")},
                      check_mode=True, diff=True)
    assert engine.plan.calls[0][1] == {"check_mode": True}
    assert result["diff"]["after_header"] == "rolling rebuild plan"
    assert result["diff"]["before"] == ""
    assert result["diff"]["after"].startswith("rolling rebuild (check mode: nothing is sent): 2 instance(s)")
    assert result["hosts"]["web1"]["outcome"] == "would_rebuild"
    assert result["changed"] is False


def test_plan_closes_its_client_when_the_engine_refuses(tmp_path, engine):
    engine.plan.error = roll_state.RolloutError("deployment contoso-web/production is locked by operation %s" % ("b" * 32))
    result = run_step({"step": "plan", "state_path": str(tmp_path / "roll.json")})
    assert result["refused"].startswith("deployment contoso-web/production is locked")
    assert result["rounds"] == 0 and "failed" not in result
    assert engine.client.closed == 1


@pytest.mark.parametrize("extra, refused", [
    ({"since": "yesterday"}, "since 'yesterday' is not a UTC time like 2026-11-27T20:00:00Z"),
    ({"since": "2999-01-01T00:00:00Z"}, "since 2999-01-01T00:00:00Z is in the future"),
    ({"health_url": "http://[::1"}, "health_url 'http://[::1' is not a valid URL"),
    ({"health_url": "ftp://health.example/"}, "health_url 'ftp://health.example/' must be an http:// or https:// URL"),
    ({"max_requests_per_second": 0}, "max_requests_per_second must be between 1 and 1000"),
    ({"max_requests_per_second": 1001}, "max_requests_per_second must be between 1 and 1000"),
    ({"poll_interval": 0.01}, "poll_interval must be between 0.05 and 60 seconds"),
    ({"batch_size": -1}, "batch_size, max_failures and max_parallel must be 0 or more"),
    ({"operation_timeout": -1}, "operation_timeout -1 must be between 0 and 86400 seconds"),
    ({"resume_window": 86401}, "resume_window 86401 must be between 0 and 86400 seconds"),
    ({"connection": {"timeout": "x"}}, "rolling_reimage_connection: argument 'timeout'"),
    ({"connection": {"timeot": 30}}, "rolling_reimage_connection has unknown keys: timeot"),
    ({"hosts": ["web0", "nameless"]}, "host nameless does not name a role instance"),
])
def test_a_refused_plan_names_the_problem_and_builds_nothing(extra, refused, engine, tmp_path):
    args = dict({"step": "plan", "state_path": str(tmp_path / "roll.json")}, **extra)
    result = run_step(args)
    assert result == {"changed": False, "refused": mock.ANY, "rounds": 0}
    assert result["refused"].startswith(refused)
    assert engine.built == [] and engine.plan.calls == []
    assert list(tmp_path.iterdir()) == []


def test_every_hosts_bad_variables_are_named_at_once_before_anything_is_built(engine):
    hostvars = dict(HOSTVARS, bad_slot=dict(HOSTVARS["web0"], deployment_slot="prod"),
                    nameless={"cloud_service": "contoso-web", "deployment_slot": "production"},
                    **{"bad\x1bname": dict(HOSTVARS["web1"], cloud_service="contoso#web")})
    result = run_step({"step": "plan", "hosts": ["web0", "bad_slot", "web1", "nameless", "bad\x1bname"]},
                      task_vars={"hostvars": hostvars})
    assert result["refused"].split("\n") == [
        "3 hosts do not name a role instance the roll can address:",
        "- host bad_slot: deployment_slot 'prod' is not a slot: use production or staging",
        "- host nameless does not name a role instance: it needs cloud_service, role_instance and deployment_slot "
        "or deployment_name (missing: role_instance)",
        "- host bad\\x1bname: cloud_service 'contoso#web' is not a valid name: use letters, digits and hyphens, "
        "starting and ending with a letter or digit"]
    assert engine.built == [] and engine.plan.calls == []
    one = run_step({"step": "plan", "hosts": ["web0", "bad_slot"]}, task_vars={"hostvars": hostvars})
    assert one["refused"] == "host bad_slot: deployment_slot 'prod' is not a slot: use production or staging"


def test_a_refused_plan_never_shows_the_health_urls_password(engine):
    result = run_step({"step": "plan", "health_url": "https://probe:%s@[::1/health" % PASSWORD})
    assert result["refused"].startswith("health_url 'https://***@[::1/health' is not a valid URL")
    assert PASSWORD not in result["refused"]
    assert engine.built == []


def test_a_plan_without_hosts_is_refused(engine):
    result = run_step({"step": "plan"}, task_vars={"hostvars": {}})
    assert result["refused"] == "rolling_reimage has no hosts to roll"
    assert engine.built == []


# -- rolling_reimage_connection ----------------------------------------------------------------------------------------
def task_args(**args):
    """The task's arguments as run() sees them: checked against the action's spec, defaults filled in."""
    checked = ArgumentSpecValidator(ROLLOUT_ARGUMENT_SPEC).validate(dict(args, step="rounds"))
    assert not checked.error_messages
    return checked.validated_parameters


def test_connection_values_are_converted_as_a_module_converts_its_arguments():
    options = ActionModule._connection_options(task_args(
        timeout=45, connection={"timeout": "30", "validate_certs": "no", "retries": "2", "use_proxy": "false"}))
    assert (options["timeout"], options["validate_certs"], options["retries"], options["use_proxy"]) == (30, False, 2, False)
    assert set(options) == set(CONNECTION_ARGUMENT_SPEC)


def test_connection_overrides_the_task_and_none_does_not():
    options = ActionModule._connection_options(task_args(
        timeout=45, api_version="2015-04-01", connection={"timeout": None, "api_version": "2014-06-01"}))
    assert options["timeout"] == 45 and options["api_version"] == "2014-06-01"


def test_connection_takes_the_certificate_alias():
    options = ActionModule._connection_options(task_args(connection={"management_cert_path": "/etc/azure/m.pem"}))
    assert options["management_certificate"] == "/etc/azure/m.pem"
    assert "management_cert_path" not in options


def test_connection_refuses_a_value_of_the_wrong_type_naming_it():
    with pytest.raises(AnsibleError) as caught:
        ActionModule._connection_options(task_args(connection={"timeout": "x"}))
    assert caught.value.message.startswith("rolling_reimage_connection: argument 'timeout' is of type")


def test_connection_refuses_unknown_keys_listing_them_all():
    with pytest.raises(AnsibleError) as caught:
        ActionModule._connection_options(task_args(connection={"timout": 30, "subscription": "x", "timeout": 30}))
    assert caught.value.message == "rolling_reimage_connection has unknown keys: subscription, timout"


@pytest.mark.parametrize("where", ["connection", "task"])
def test_connection_errors_never_show_the_certificate_password(where):
    connection = {"cloud_environment": PASSWORD}
    if where == "connection":
        args = task_args(connection=dict(connection, certificate_password=PASSWORD))
    else:
        args = task_args(certificate_password=PASSWORD, connection=connection)
    with pytest.raises(AnsibleError) as caught:
        ActionModule._connection_options(args)
    assert "value of cloud_environment must be one of" in caught.value.message
    assert PASSWORD not in caught.value.message and "********" in caught.value.message

"""The rolling reimage planner with a fake client: batching, preflight, resume, summary."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import rollout
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.errors import InputError

OPTIONS = {"fresh": False, "batch_size": 0, "max_failures": 0, "allow_unready": False, "operation_timeout": 60,
           "ready_timeout": 60, "max_parallel": 4}


class FakeClient:
    def __init__(self, status=None, locked=False, dep_status="Running"):
        self.status = status or {}
        self.locked = locked
        self.dep_status = dep_status

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


def test_resume_skips_done_and_follows_started(tmp_path):
    state_file = rollout.StateFile(str(tmp_path / "s.json"))
    state = rollout.plan(FakeClient(), targets(ALL), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32)
    state["instances"]["svc/svc-production/web_in_1"].update(outcome="started", request_id="b" * 32)
    state["status"] = "failed"
    state_file.save(state)
    resumed = rollout.plan(FakeClient(), targets(ALL), OPTIONS, state_file, print)
    assert resumed["resumed"] is True
    assert "Web_IN_0" not in resumed["deployments"]["svc/svc-production"]["batches"][0]["instances"]
    assert resumed["instances"]["svc/svc-production/web_in_1"]["request_id"] == "b" * 32
    fresh = rollout.plan(FakeClient(), targets(ALL), dict(OPTIONS, fresh=True), state_file, print)
    assert fresh["resumed"] is False and len(fresh["deployments"]["svc/svc-production"]["batches"][0]["instances"]) == 4


def test_summary_counts_and_table(tmp_path):
    state_file = rollout.StateFile(str(tmp_path / "s.json"))
    state = rollout.plan(FakeClient(), targets(["Web_IN_0", "Web_IN_1"]), OPTIONS, state_file, print)
    state["instances"]["svc/svc-production/web_in_0"].update(outcome="done", request_id="a" * 32, start=1.0, end=2.0)
    state["deployments"]["svc/svc-production"].update(stopped=True, stop_reason="Web_IN_1: boom")
    summary = rollout.summarize(state, state_file)
    assert summary["status"] == "failed" and summary["counts"] == {"done": 1, "failed": 0, "untouched": 1, "skipped": 0}
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

"""Fakes for the engine's unit tests: a client over a fixed deployment and history, its targets and options."""
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _waiter as waiter
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._client import ServiceManagementClient
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import identity as roll_identity
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import rounds as roll_rounds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import runner as roll_runner
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

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
    return [roll_identity.target_from_hostvars("h-" + n, {"cloud_service": service, "deployment_slot": slot,
                                                          "role_instance": n}) for n in names]


ALL = ["%s_IN_%d" % (r, k) for r in ("Web", "Worker") for k in range(4)]


def operation(request_id, instance, status, name="ReimageRoleInstance", deployment="svc-production"):
    return {"request_id": request_id, "name": name, "status": status, "started_time": "2026-01-01T00:00:00Z",
            "parameters": {"serviceName": "svc", "deploymentName": deployment, "roleInstanceName": instance}}


class DownElsewhereClient(FakeClient):
    """Worker_IN_2 (upgrade domain 2) is down for the first ``down_for`` seconds of a fake clock."""

    def __init__(self, down_for, **kwargs):
        super().__init__(**kwargs)
        self.now = 0.0
        self.down_for = down_for
        self.poll = waiter.PollSchedule(0.5, roll_rounds.POLL_GROWTH)

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def get_deployment(self, service, slot=None, deployment_name=None):
        self.status = {"Worker_IN_2": "BusyRole"} if self.now < self.down_for else {}
        return super().get_deployment(service, slot, deployment_name)


def _runner(client, tmp_path, said, timeout):
    state = roll_plan.plan(FakeClient(), targets(ALL), dict(OPTIONS, availability_timeout=timeout),
                           roll_state.StateFile(str(tmp_path / "s.json")), print)
    state["options"]["availability_timeout"] = timeout
    return roll_runner.DeploymentRunner(client, state, None, "svc/svc-production", state["options"], said.append)


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

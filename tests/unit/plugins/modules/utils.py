"""Running a module's main() in process: its arguments set the way the installed ansible-core reads them, its
exit caught, and its client replaced by a stub that records what would have been sent."""
import contextlib
import copy
import json
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _module_base as module_base
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import CONNECTION_ARGUMENT_SPEC

try:  # ansible-core 2.19 and later
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.16 to 2.18 read the arguments from _ANSIBLE_ARGS alone
    patch_module_args = None

SUBSCRIPTION = "3f2b3c1e-0000-4000-8000-000000000001"
REQUEST_ID = "904b574f8c60b8cd9906593a7c53b6d5"
# Every environment variable a connection option falls back to: the tests must not read the caller's.
CONNECTION_ENV = tuple(name for spec in CONNECTION_ARGUMENT_SPEC.values() if "fallback" in spec for name in spec["fallback"][1])


@contextlib.contextmanager
def module_args(args):
    """Expose ``args`` to the AnsibleModule made inside the block."""
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    buffer = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8")
    with mock.patch.object(basic, "_ANSIBLE_ARGS", buffer):
        yield


class ModuleExited(Exception):
    """exit_json was called; ``result`` is what it was given."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFailed(ModuleExited):
    """fail_json was called; ``result`` holds msg and failed=True besides what it was given."""


def _exit_json(self, **kwargs):  # pylint: disable=unused-argument
    raise ModuleExited(kwargs)


def _fail_json(self, msg, **kwargs):  # pylint: disable=unused-argument
    kwargs.pop("exception", None)
    raise ModuleFailed(dict(kwargs, msg=msg, failed=True))


def run_module(module, args, check_mode=False):
    """(result, failed) of ``module.main()`` with ``args``; exit_json and fail_json raise instead of exiting."""
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with module_args(args), mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json):
        try:
            module.main()
        except ModuleFailed as done:
            return done.result, True
        except ModuleExited as done:
            return done.result, False
    raise AssertionError("%s.main() returned without exit_json or fail_json" % module.__name__)


def run_module_output(module, args, capsys):
    """The JSON a module prints with the real exit_json and fail_json (no_log masking included), and its exit
    status."""
    with module_args(args), pytest.raises(SystemExit) as done:
        module.main()
    out = capsys.readouterr().out
    return out, json.loads(out.strip().splitlines()[-1]), done.value.code


def instance(name, status="ReadyRole", upgrade_domain=0, role="WebRole1"):
    return {"role_name": role, "instance_name": name, "instance_status": status, "upgrade_domain": upgrade_domain,
            "fault_domain": upgrade_domain % 2, "instance_size": "Small", "instance_state_details": None,
            "ip_address": "10.0.0.%d" % (upgrade_domain + 4), "power_state": "Started", "host_name": name}


def deployment(name="contoso-web-prod", slot="production", instances=None):
    if instances is None:
        instances = [instance("WebRole1_IN_0"), instance("WebRole1_IN_1", upgrade_domain=1)]
    return {"name": name, "slot": slot, "status": "Running", "label": "prod", "role_instances": instances}


def operation(status="Succeeded", http_status_code=200, error=None, request_id=REQUEST_ID):
    return {"request_id": request_id, "status": status, "http_status_code": http_status_code, "error": error}


class StubClient:
    """Stands for ServiceManagementClient: answers from fixed data and records every call. ``raises`` maps a method
    name to the error it raises."""
    subscription_id = SUBSCRIPTION

    def __init__(self, deployment_data=None, operation_data=None, raises=None, ready_status="ReadyRole"):
        self.deployment = deployment_data or deployment()
        self.operation = operation_data or operation()
        self.raises = dict(raises or {})
        self.ready_status = ready_status
        self.calls = []
        self.closed = 0

    def _record(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if name in self.raises:
            raise self.raises[name]

    def names(self):
        return [call[0] for call in self.calls]

    def posts(self):
        """The mutating requests: the role-instance operations sent."""
        return [call for call in self.calls if call[0] == "role_instance_operation"]

    def get_cloud_service(self, service, embed_detail=False):
        self._record("get_cloud_service", service, embed_detail=embed_detail)
        return {"name": service, "deployments": None}

    def get_deployment(self, service, slot=None, deployment_name=None):
        self._record("get_deployment", service, slot, deployment_name)
        return copy.deepcopy(self.deployment)

    def role_instance_operation(self, kind, service, instance_name, slot=None, deployment_name=None, deadline=None):
        self._record("role_instance_operation", kind, service, instance_name, slot, deployment_name, deadline=deadline)
        return REQUEST_ID

    def get_operation(self, request_id):
        self._record("get_operation", request_id)
        return dict(self.operation, request_id=request_id)

    def wait_for_operation(self, request_id, deadline, probe_first=False, on_poll=None, expected=None):
        self._record("wait_for_operation", request_id, deadline=deadline, probe_first=probe_first, expected=expected)
        if on_poll is not None:
            on_poll(operation("InProgress", None, request_id=request_id))
        return dict(self.operation, request_id=request_id)

    def wait_for_instance_ready(self, service, instance_name, deadline, slot=None, deployment_name=None):
        self._record("wait_for_instance_ready", service, instance_name, slot, deployment_name, deadline=deadline)
        return instance(instance_name, self.ready_status)

    def close(self):
        self.closed += 1


class ClientFactory:
    """Replaces build_client in the module base: hands out one StubClient and records the options it was given."""

    def __init__(self, client):
        self.client = client
        self.options = []

    def __call__(self, options, warn=None, poll=None, rate_limiter=None):
        self.options.append(dict(options))
        return self.client


def stub_client(monkeypatch, client=None):
    """Make every module build ``client`` (a fresh StubClient by default); returns the factory that records it."""
    for name in CONNECTION_ENV:
        monkeypatch.delenv(name, raising=False)
    factory = ClientFactory(client or StubClient())
    monkeypatch.setattr(module_base, "build_client", factory)
    return factory

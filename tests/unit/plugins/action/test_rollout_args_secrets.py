"""The action's arguments that may hold secrets are no_log (issue 24): Ansible's censoring knows their values."""
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._rollout_args import ROLLOUT_ARGUMENT_SPEC


def test_health_url_is_no_log():
    url = "https://gate:hunter2@health.test/ready"
    checked = ArgumentSpecValidator(ROLLOUT_ARGUMENT_SPEC).validate({"step": "plan", "health_url": url})
    assert ROLLOUT_ARGUMENT_SPEC["health_url"]["no_log"] is True
    assert url in checked._no_log_values  # pylint: disable=protected-access

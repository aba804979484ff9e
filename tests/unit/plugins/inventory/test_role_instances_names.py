"""Names from the service (or the cache) are checked before a record becomes a host (issue 24)."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.inventory.role_instances import InventoryModule
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError

RECORD = {"cloud_service": "contoso-web", "deployment_name": "contoso-web-prod", "deployment_slot": "production",
          "cloud_role": "WebRole1", "role_instance": "WebRole1_IN_0"}


def test_a_record_that_follows_the_rules_is_named_as_documented():
    assert InventoryModule()._host_name(dict(RECORD), None) == "contoso-web.production.WebRole1_IN_0"  # pylint: disable=protected-access


@pytest.mark.parametrize("key, value, words", [
    ("cloud_service", "web{{ 7 * 7 }}", "cloud_service 'web{{ 7 * 7 }}' is not a valid name"),
    ("deployment_name", "d{% if 1 %}", "deployment_name 'd{% if 1 %}' is not a valid name"),
    ("cloud_role", "{# x #}", "role_name '{# x #}' is not a valid name"),
    ("role_instance", "Web\u202eRole_IN_0", "role_instance 'Web\\u202eRole_IN_0' is not a valid name"),
    ("role_instance", "a" * 129, "role_instance 'aaaa"),
    ("deployment_slot", "{{ x }}", "deployment_slot '{{ x }}' is not a slot"),
])
def test_a_name_breaking_the_services_rules_is_refused_and_named_escaped(key, value, words):
    with pytest.raises(InputError) as caught:
        InventoryModule()._host_name(dict(RECORD, **{key: value}), None)  # pylint: disable=protected-access
    assert words in caught.value.message and "\u202e" not in caught.value.message

"""A roll's identity and the targets hosts stand for."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import identity as roll_identity
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

from tests.unit.plugins.plugin_utils._roll.fakes import targets


@pytest.mark.parametrize("hostvars,message", [
    ({"cloud_service": "svc"}, "does not name a role instance"),
    ({"cloud_service": "svc", "role_instance": "a/b", "deployment_slot": "production"}, "not a valid name"),
    ({"cloud_service": "svc", "role_instance": "W_IN_0", "deployment_slot": "blue"}, "not a slot"),
])
def test_bad_hostvars(hostvars, message):
    with pytest.raises(InputError, match=message):
        roll_identity.target_from_hostvars("h", hostvars)


def test_the_operation_is_part_of_the_roll_and_a_reimage_roll_keeps_its_id():
    both = targets(["Web_IN_0", "Web_IN_1"])
    ids = {kind: roll_identity.roll_id(both, kind) for kind in ("reimage", "reboot", "rebuild")}
    assert len(set(ids.values())) == 3
    assert ids["reimage"] == roll_identity.roll_id(both), "a reimage roll names no operation in its id"
    by_name = [{"cloud_service": "SVC", "deployment_name": "svc-Production", "instance": "WEB_in_0"},
               {"cloud_service": "svc", "deployment_name": "svc-production", "instance": "Web_IN_1"}]
    assert roll_identity.roll_id(by_name) == roll_identity.roll_id(
        [dict(t, deployment_name="svc-production") for t in targets(["Web_IN_1", "Web_IN_0"])]), \
        "the instances as the service names them, in any letter case, whichever way the hosts spell them"
    assert roll_state.default_report_path("/x/roll-abc.json") == "/x/roll-abc.html"
    assert roll_state.default_report_path("/x/roll.html") == "/x/roll.html.html", "never the state file itself"
    with pytest.raises(InputError, match="operation must be one of"):
        roll_identity.roll_id(both, "restart")

"""The service's text in the roll's messages: control and bidi characters shown escaped (issue 24)."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _rollout as rollout

from tests.unit.plugins.plugin_utils.test_rollout import OPTIONS, FakeClient, targets


def test_the_services_statuses_in_a_refused_plan_are_shown_escaped(tmp_path):
    client = FakeClient(status={"Worker_IN_2": "Busy\u202eRole"})
    with pytest.raises(rollout.RolloutError) as info:
        rollout.plan(client, targets(["Web_IN_0"]), OPTIONS, rollout.StateFile(str(tmp_path / "s")), print)
    assert "instance Worker_IN_2 is Busy\\u202eRole" in info.value.message and "\u202e" not in info.value.message

"""The roll's state file: trusted only when safe."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import identity as roll_identity
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

from tests.unit.plugins.plugin_utils._roll.fakes import ALL, OPTIONS, FakeClient, targets


def test_the_state_file_is_trusted_only_when_safe(tmp_path):
    folder = tmp_path / "state"
    state_file = roll_state.StateFile(str(folder / "s.json"))
    state = roll_plan.plan(FakeClient(), targets(ALL), OPTIONS, state_file, print)
    assert oct(folder.stat().st_mode & 0o777) == "0o700" and oct((folder / "s.json").stat().st_mode & 0o777) == "0o600"
    assert state_file.load()["roll_id"] == roll_identity.roll_id(state["instances"].values())
    (folder / "s.json").chmod(0o620)
    with pytest.raises(roll_state.RolloutError, match="writable by other users"):
        state_file.load()
    (folder / "s.json").chmod(0o600)
    folder.chmod(0o777)
    with pytest.raises(roll_state.RolloutError, match="its folder is writable by other users"):
        state_file.load()
    folder.chmod(0o700)
    link = roll_state.StateFile(str(folder / "link.json"))
    (folder / "link.json").symlink_to(folder / "s.json")
    with pytest.raises(roll_state.RolloutError, match="symbolic link"):
        link.load()
    state["instances"]["svc/svc-production/web_in_0"]["request_id"] = "../../x"
    state_file.save(state)
    with pytest.raises(InputError, match="not an operation id"):
        state_file.load()

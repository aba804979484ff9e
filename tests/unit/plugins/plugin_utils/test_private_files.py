"""The owner and mode check shared by the roll's state file and its report (issue 24)."""
import os
import stat

import pytest

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _private_files as private_files
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import report as roll_report


class Info:
    def __init__(self, uid=None, mode=0o700):
        self.st_uid = os.geteuid() if uid is None else uid
        self.st_mode = stat.S_IFDIR | mode


@pytest.mark.parametrize("info, problem", [
    (Info(), None), (Info(mode=0o755), None),
    (Info(mode=0o770), "its folder is writable by other users (mode 770)"),
    (Info(mode=0o1777), "its folder is writable by other users (mode 1777)"),
    (Info(uid=os.geteuid() + 1), "its folder is owned by another user (uid %d)" % (os.geteuid() + 1)),
])
def test_owner_and_mode(info, problem):
    assert private_files.owner_and_mode_problem(info, "its folder") == problem


def test_the_report_is_not_written_into_a_folder_others_may_write(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    state = {"instances": {}, "deployments": {}, "hosts": {}, "started": 0, "kind": "reimage"}
    with pytest.raises(OSError) as caught:
        roll_report.write(state, str(shared / "roll.html"))
    assert caught.value.strerror.startswith("its folder %s is writable by other users (mode 777); it is not written"
                                            % shared)
    assert list(shared.iterdir()) == []

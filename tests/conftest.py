"""pytest fixtures: an in-process emulator on a free port, shared by a session and reset per test."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.helpers import EmulatorHandle, ensure_collection_path  # noqa: E402

ensure_collection_path()


@pytest.fixture(scope="session")
def emulator_session(tmp_path_factory):
    from tests.emulator import EmulatorServer
    workdir = os.environ.get("EMULATOR_WORKDIR") or str(tmp_path_factory.mktemp("emulator"))
    server = EmulatorServer(workdir, 0, None, operation_seconds=1.0, recovery_seconds=1.0)
    info = server.start()
    yield EmulatorHandle(info, server)
    server.stop()


@pytest.fixture
def emulator(emulator_session):
    """The session's emulator, with the default topology, fast timing, no faults and an empty log."""
    emu = emulator_session
    emu.server.faults.clear()
    from tests.emulator import DEFAULT_TOPOLOGY
    if emu.server.emulator.topology_spec != DEFAULT_TOPOLOGY:
        emu.server.emulator.load_topology(DEFAULT_TOPOLOGY)
    emu.server.emulator.set_timing(1.0, 1.0, 100)
    emu.server.emulator.reset()
    return emu

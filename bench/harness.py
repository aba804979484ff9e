"""What the benchmarks share: the checkout on the import path and an emulator running in this process."""
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.emulator import EmulatorServer  # noqa: E402
from tests.helpers import EmulatorHandle, bin_path, ensure_collection_path  # noqa: E402

__all__ = ["ROOT", "bin_path", "start_emulator"]


def start_emulator(name, operation_seconds=2.0, recovery_seconds=2.0):
    """(emulator handle, scratch directory): an emulator on a free port with its PKI under a fresh directory.

    The caller stops it with ``emu.server.stop()``.
    """
    ensure_collection_path()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-%s-" % name))
    server = EmulatorServer(str(work / "emulator"), 0, None, operation_seconds, recovery_seconds)
    return EmulatorHandle(server.start(), server), work

"""Service Management emulator: a local, faithful stand-in for management.core.windows.net.

Run it with ``python -m tests.emulator --workdir DIR`` from the collection root; see docs/emulator.md.
"""
from .server import EmulatorServer  # noqa: F401
from .state import DEFAULT_TOPOLOGY, Emulator  # noqa: F401

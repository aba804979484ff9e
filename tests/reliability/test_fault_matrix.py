"""The fault matrix as tests: every fault against every entry point (see tests/reliability/matrix.py)."""
import pytest

from tests.reliability.matrix import ENTRIES, FAULTS, run_cell


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("fault", FAULTS)
def test_cell(emulator, tmp_path, fault, entry):
    cell = run_cell(emulator, fault, entry, tmp_path)
    assert cell["correct"], "%s x %s: %s (%s), expected %s\n%s" % (
        fault, entry, cell["outcome"], cell["reason"], cell["expected"], cell["output"][-3000:])

"""Run the fault matrix and write docs/reliability.md:  .venv/bin/python scripts/fault_matrix.py

Every fault the emulator injects, against every entry point, through real ansible runs (see
tests/reliability/matrix.py for the cases and how outcomes are classified). Prints the matrix with counts
and rewrites the matrix section of docs/reliability.md. Takes about four minutes.
"""
import collections
import pathlib
import platform
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import EmulatorServer  # noqa: E402
from tests.helpers import EmulatorHandle, ensure_collection_path  # noqa: E402
from tests.reliability.matrix import ENTRIES, FAULTS, run_cell  # noqa: E402

MARK = {"recovered": "R", "failed": "F", "wrong": "**WRONG**"}
BEGIN, END = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"


def main():
    ensure_collection_path()
    work = pathlib.Path(tempfile.mkdtemp(prefix="fault-matrix-"))
    server = EmulatorServer(str(work / "emulator"), 0, None, 0.5, 0.5)
    emu = EmulatorHandle(server.start(), server)
    cells = {}
    started = time.monotonic()
    try:
        for fault in FAULTS:
            for entry in ENTRIES:
                cell = run_cell(emu, fault, entry, work)
                cells[(fault, entry)] = cell
                print("%-18s %-22s %-9s %s" % (fault, entry, cell["outcome"] if cell["correct"] else "WRONG",
                                               cell["reason"]), flush=True)
    finally:
        server.stop()
    counts = collections.Counter(c["outcome"] if c["correct"] else "wrong" for c in cells.values())
    lines = [BEGIN, "", "Measured %s on %s, Python %s, in %.0f s (`.venv/bin/python scripts/fault_matrix.py`)." % (
        time.strftime("%Y-%m-%d"), platform.machine(), platform.python_version(), time.monotonic() - started), "",
        "| fault | " + " | ".join("`%s`" % e for e in ENTRIES) + " |",
        "|---|" + "---|" * len(ENTRIES)]
    for fault in FAULTS:
        row = []
        for entry in ENTRIES:
            cell = cells[(fault, entry)]
            row.append(MARK[cell["outcome"]] if cell["correct"] else MARK["wrong"])
        lines.append("| %s | %s |" % (fault, " | ".join(row)))
    tally = (counts["recovered"], counts["failed"], counts["wrong"])
    lines += ["", "R: recovered within its bound. F: failed with a clear error and a correct state. "
              "Counts: %d recovered, %d failed cleanly, %d wrong." % tally, "",
              "| fault | entry point | outcome | what happened |", "|---|---|---|---|"]
    for (fault, entry), cell in cells.items():
        outcome = cell["outcome"] if cell["correct"] else "WRONG"
        lines.append("| %s | `%s` | %s | %s |" % (fault, entry, outcome, cell["reason"].replace("|", "/")))
    lines += ["", END]
    page = ROOT / "docs" / "reliability.md"
    text = page.read_text() if page.exists() else BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(head + "\n".join(lines) + tail)
    print("\n%d recovered, %d failed cleanly, %d wrong; written to %s" % (
        counts["recovered"], counts["failed"], counts["wrong"], page))
    return 1 if counts["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())

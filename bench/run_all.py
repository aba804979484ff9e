"""Run every benchmark and write docs/performance.md:  .venv/bin/python bench/run_all.py

Runs bench/overhead.py, bench/waiting.py, bench/rolling.py, bench/fleet.py, bench/inventory.py and bench/memory.py in turn
(about 30 minutes), each comparing against its baseline in the same run, and writes their tables with the
machine they ran on and the command to reproduce each. Notes kept in bench/notes.md are appended.
"""
import pathlib
import platform
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCHMARKS = ("overhead.py", "waiting.py", "rolling.py", "fleet.py", "inventory.py", "memory.py")


def main():
    sections = []
    for script in BENCHMARKS:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / script)], capture_output=True, text=True,
                              cwd=str(ROOT), check=False)
        if proc.returncode:
            sys.exit("bench/%s failed:\n%s" % (script, proc.stdout[-3000:] + proc.stderr[-3000:]))
        body = proc.stdout.strip()
        sections.append("%s\n\nRerun: `.venv/bin/python bench/%s` (took %.0f s here).\n" % (
            body, script, time.monotonic() - started))
        print(body + "\n", flush=True)
    notes = (ROOT / "bench" / "notes.md").read_text() if (ROOT / "bench" / "notes.md").exists() else ""
    page = ["# Performance", "",
            "Every figure comes from a benchmark script under `bench/` that measures a baseline in the same run; "
            "none is a timed test. `bash scripts/bootstrap.sh && .venv/bin/python bench/run_all.py` reruns them "
            "all and rewrites this page. Last run %s on %s (%s), Python %s." % (
                time.strftime("%Y-%m-%d"), platform.node() or "a CI-class machine", platform.machine(),
                platform.python_version()), ""]
    page += sections
    if notes:
        page += ["", notes.strip(), ""]
    (ROOT / "docs" / "performance.md").write_text("\n".join(page))


if __name__ == "__main__":
    main()

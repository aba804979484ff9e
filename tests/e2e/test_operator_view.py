"""What the operator sees (issue 27): a wait is never silent, the plan says what counts as done, a state file the
service does not back is not trusted. Real ansible-playbook runs against the emulator, judged from its event log and
from the output as it arrives."""
import subprocess
import time

from tests.helpers import bin_path
from tests.e2e.test_rolling_role import inventory, play, reimaged


def stream_playbook(emulator, tmp_path, role_vars, inv, timeout=300):
    """Run ansible-playbook and note when each line of its output arrives: [(seconds since start, line)]."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(play(tmp_path, **role_vars))
    started = time.monotonic()
    proc = subprocess.Popen([bin_path("ansible-playbook"), str(playbook), "-i", str(inv)], env=emulator.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            bufsize=1)
    lines = []
    try:
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            if time.monotonic() - started > timeout:
                raise AssertionError("ansible-playbook ran past %ss" % timeout)
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait()
    return proc.returncode, lines


def test_a_roll_waiting_on_a_stuck_instance_says_so_at_least_every_30s(emulator, tmp_path):
    emulator.fault(method="POST", path="WorkerRole1_IN_1", action={"stuck": True})
    rc, lines = stream_playbook(emulator, tmp_path, {"rolling_reimage_ready_timeout": 65}, inventory(tmp_path))
    output = "\n".join(line for _at, line in lines)
    assert rc != 0, output
    waiting = [(at, line) for at, line in lines if "waiting for WorkerRole1_IN_1 to be ReadyRole" in line]
    assert len(waiting) >= 2, output
    assert all("WorkerRole1_IN_1 is BusyRole" in line and "of 65s, rolling_reimage_ready_timeout" in line
               for _at, line in waiting), waiting
    # From the batch's start to its end, never more than 30 s without a line.
    start = next(at for at, line in lines if "upgrade domain 1: reimaging" in line)
    end = next(at for at, line in lines if "upgrade domain 1: stopped" in line)
    times = [at for at, _line in lines if start <= at <= end]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert end - start >= 60 and max(gaps) <= 30, (max(gaps), output)
    assert "not ReadyRole within 65s of its reimage: still BusyRole" in output
    assert set(reimaged(emulator).values()) == {1}

"""What an operator sees of a roll (issue 27, item 7): real ansible-playbook runs of the rolling_reimage role against
the emulator, judged from their output."""
import collections
import json

from tests.e2e.test_rolling_role import inventory, play, recap
from tests.helpers import run_playbook

ROLE = "azure_classic.cloud_services.rolling_reimage : "


def sections(output):
    """(task name, lines printed under its heading) in order; the role's prefix is taken off the names."""
    found = [("", [])]
    for line in output.splitlines():
        if line.startswith("TASK [") or line.startswith("PLAY RECAP"):
            found.append((line[6:].rsplit("]", 1)[0].replace(ROLE, "", 1) if line.startswith("TASK [") else
                          "PLAY RECAP", []))
        else:
            found[-1][1].append(line)
    return found


def under(output, text):
    """The names of the tasks under whose heading a line holding ``text`` was printed."""
    return [name for name, lines in sections(output) if any(text in line for line in lines)]


def test_a_default_roll_prints_no_per_round_skip_lines(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inventory(tmp_path, ("production", "staging")))
    assert proc.returncode == 0, proc.output
    assert "(item=round" not in proc.output, "no round is skipped one by one"
    skips = collections.Counter(name for name, lines in sections(proc.output) for line in lines
                                if line.startswith("skipping:"))
    assert skips and max(skips.values()) == 1, "a task that does not run says so once, not once per host: %s" % skips
    # What is left: the plan, a line per batch start and end, the table.
    assert under(proc.output, "rolling reimage: 12 instance(s) in 2 deployment(s), 3 round(s)") == [
        "Plan the roll (live preflight, resume from the service's operation history, upgrade-domain batches)"]
    batches = [line for line in proc.output.splitlines() if "] batch " in line]
    assert len(batches) == 12, "one line per batch start and end, for each of 2 deployments x 3 batches"
    assert under(proc.output, "rolling reimage complete") == ["Summarize the roll and write its HTML report"]


def test_with_skipped_hosts_hidden_each_line_is_printed_under_its_own_tasks_heading(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inventory(tmp_path),
                        env={"ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"})
    assert proc.returncode == 0, proc.output
    assert "skipping:" not in proc.output
    assert under(proc.output, "rolling reimage: 6 instance(s) in 1 deployment(s), 3 round(s)") == [
        "Plan the roll (live preflight, resume from the service's operation history, upgrade-domain batches)"]
    assert set(under(proc.output, "] batch ")) == {"Run every round, one batch of every deployment at a time"}
    assert under(proc.output, "rolling reimage complete") == ["Summarize the roll and write its HTML report"]

    # One round at a time (a pause between rounds): each round's lines under that round's task.
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_fresh=True, rolling_reimage_pause_seconds=1,
                                       rolling_reimage_state_path=str(tmp_path / "again.json")),
                        tmp_path, inventory=inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1")),
                        env={"ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"})
    assert proc.returncode == 0, proc.output
    for batch in (1, 2):
        assert set(under(proc.output, "] batch %d/2" % batch)) == {
            "Roll one batch of every deployment, round %d" % batch}, proc.output


def test_a_failed_host_says_its_outcome_in_one_message(emulator, tmp_path):
    emulator.fault(method="POST", path="contoso-web-prod/roleinstances/WebRole1_IN_1", action={
        "fail_operation": {"code": "InternalError", "message": "The host failed."}})
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inventory(tmp_path))
    assert proc.returncode != 0
    fatal = {line.split("]", 1)[0][len("fatal: ["):]: json.loads(line.split("FAILED! => ", 1)[1])
             for line in proc.output.splitlines() if line.startswith("fatal: ")}
    failed = {h for h, s in recap(proc.output).items() if s["failed"]}
    assert set(fatal) == failed == {"contoso-web.production.%s" % n for n in (
        "WebRole1_IN_1", "WorkerRole1_IN_1", "WebRole1_IN_2", "WorkerRole1_IN_2")}
    for host, result in fatal.items():
        assert set(result) == {"changed", "msg", "outcome"}, "the message and the outcome, nothing else: %s" % result
        assert result["msg"].startswith("contoso-web/contoso-web-prod/%s (upgrade domain " % host.rsplit(".", 1)[1])
    assert fatal["contoso-web.production.WebRole1_IN_1"]["outcome"] == "failed"
    assert fatal["contoso-web.production.WebRole1_IN_2"]["outcome"] == "not_reimaged"

"""Checkpoints (rolling_reimage_checkpoints): a canary, bake time and a person's go-ahead between parts of a roll.
Real ansible-playbook runs against the emulator, judged from its event log: which instances were reimaged, how
often, in which order and when."""
import re
import time

import pytest

from tests.helpers import HealthEndpoint, run_playbook
from tests.e2e.test_rolling_role import inventory, play, recap, reimaged, report_path_in

HOST = "contoso-web.production."
ALL = ["%s_IN_%d" % (role, k) for role in ("WebRole1", "WorkerRole1") for k in range(3)]
CANARY = "WebRole1_IN_0"  # the first instance of the first batch: upgrade domain 0, role WebRole1 first


def sent(emulator):
    """Instances given an accepted reimage, in the order the service accepted them, with when: [(time, instance)]."""
    return [(e["time"], e["path"].rsplit("/", 1)[-1]) for e in emulator.accepted()]


def ready_after(emulator, instance, when):
    """When ``instance`` was ReadyRole again after its reimage accepted at ``when``."""
    ready = [e["time"] for e in emulator.events("instance_status")
             if e["instance"] == instance and e["status"] == "ReadyRole" and e["time"] > when]
    assert ready, "%s never ReadyRole after its reimage" % instance
    return min(ready)


def reported(output):
    """Each host's result of the task that reports its outcome (ansible-playbook -v): {host: (status, result text)}."""
    section = output.split("Report this instance's outcome]", 1)[1].split("\nTASK [", 1)[0].split("\nPLAY RECAP", 1)[0]
    pattern = re.compile(r"^(ok|changed|failed): \[([^\]]+)\] => (.*)$", re.M)
    return {m.group(2): (m.group(1), m.group(3)) for m in pattern.finditer(section)}


def waits_after_checkpoints(emulator, counts):
    """For each checkpoint (an instance count of the roll): seconds between the last instance of the part before it
    being ReadyRole and the next send, from the event log."""
    order = sent(emulator)
    gaps = []
    for count in counts:
        last_ready = max(ready_after(emulator, name, when) for when, name in order[:count])
        gaps.append(order[count][0] - last_ready)
    return gaps


@pytest.mark.parametrize("second_home", ["same", "fresh"])
def test_a_canary_then_the_rest_one_reimage_per_instance_over_two_runs(emulator, tmp_path, second_home):
    inv = inventory(tmp_path)
    env = {"ANSIBLE_SHOW_CUSTOM_STATS": "true"}
    first = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1]), tmp_path, inventory=inv, env=env,
                         extra=("-v",))
    assert first.returncode == 0, first.output
    assert [name for _when, name in sent(emulator)] == [CANARY], "exactly one instance: the canary"
    stats = recap(first.output)
    assert {h for h, c in stats.items() if c["changed"]} == {HOST + CANARY}
    assert not any(c["failed"] for c in stats.values()) and len(stats) == 6
    text = " ".join(first.output.split())
    assert "checkpoint 1 of 1 (1 of 6 instances) reached: baking for 0s, then the roll pauses" in text
    hosts = reported(first.output)
    assert hosts[HOST + CANARY][0] == "changed" and len(hosts) == 6
    for name in ALL[1:]:
        status, result = hosts[HOST + name]
        assert status == "ok" and '"outcome": "waiting"' in result, (name, status, result)
        assert "waiting for the next part of the roll (checkpoint 1 of 1)" in result
    assert "rolling reimage paused in" in text and "5 waiting for a later part" in text
    since = re.search(r"-e rolling_reimage_since=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", text)
    assert since and "paused at checkpoint 1 of 1 (1 of 6 instances reimaged): to go on, run the same job again" in text
    # set_stats carries the roll's start, so the next job of an AWX workflow continues this roll.
    assert "'rolling_reimage_since': '%s'" % since.group(1) in text or '"rolling_reimage_since": "%s"' % since.group(
        1) in text, text[-3000:]

    if second_home == "same":
        # The same machine, long after: a resume window that no longer reaches the canary. The state file knows the
        # roll is paused, so it continues from the roll's own start.
        time.sleep(2)
        second = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1], rolling_reimage_resume_window=1),
                              tmp_path, inventory=inv)
        assert "continuing the roll paused at a checkpoint" in second.output
    else:
        # Another machine, long after: no state file, and a resume window that no longer reaches the canary. The
        # since the first run printed continues the roll all the same.
        home = tmp_path / "other-home"
        home.mkdir(mode=0o700)
        second = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1], rolling_reimage_state_path="",
                                             rolling_reimage_resume_window=1, rolling_reimage_since=since.group(1)),
                              tmp_path, inventory=inv, env={"HOME": str(home)})
    assert second.returncode == 0, second.output
    counts = reimaged(emulator)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1
    stats = recap(second.output)
    assert {h for h, c in stats.items() if c["changed"]} == {HOST + n for n in ALL if n != CANARY}
    assert not any(c["failed"] for c in stats.values())
    assert "rolling reimage complete" in second.output and "1 skipped" in second.output


# One task for every round; one task with the health gate after each round (and throughout each bake); the role's
# loop of one task per round (a pause between rounds).
@pytest.mark.parametrize("path", ["rounds", "health_url", "round_loop"])
def test_continue_bakes_at_each_checkpoint_then_goes_on_and_the_report_marks_them(emulator, tmp_path, path):
    delay = 2
    health = path == "health_url"
    role_vars = {"rolling_reimage_checkpoints": [1, "50%"], "rolling_reimage_checkpoint_action": "continue",
                 "rolling_reimage_checkpoint_delay": delay}
    endpoint = HealthEndpoint(emulator) if health else None
    if health:
        role_vars.update(rolling_reimage_health_url=endpoint.url + "/", rolling_reimage_health_validate_certs=False)
    if path == "round_loop":
        role_vars.update(rolling_reimage_pause_seconds=1)
    proc = run_playbook(emulator, play(tmp_path, **role_vars), tmp_path, inventory=inventory(tmp_path))
    if endpoint:
        endpoint.close()
    assert proc.returncode == 0, proc.output
    counts = reimaged(emulator)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1
    # The canary, then WorkerRole1_IN_0 (the rest of its upgrade domain) with WebRole1_IN_1, then the rest.
    order = [name for _when, name in sent(emulator)]
    assert order[:1] == [CANARY] and set(order[1:3]) == {"WorkerRole1_IN_0", "WebRole1_IN_1"}, order
    gaps = waits_after_checkpoints(emulator, [1, 3])
    assert all(gap >= delay for gap in gaps), gaps
    text = " ".join(proc.output.split())
    assert "checkpoint 1 of 2 (1 of 6 instances) reached: baking for 2s" in text
    assert "checkpoint 2 of 2 (3 of 6 instances): baked 2s" in text
    assert "rolling reimage complete" in text
    assert ("Roll one batch of every deployment, round 5" in text) == (path == "round_loop")
    if health:
        assert "with the health gate asked every 2s" in text
        assert len(endpoint.paths) >= 5 + 2 * 2, "after each round, and at least twice in each bake"
    assert all(c["changed"] == 1 and not c["failed"] for c in recap(proc.output).values())
    page = report_path_in(proc.output).read_text()
    assert page.count('class="checkpoint"') == 2 and page.count('class="bake"') == 2
    assert "checkpoint 1 of 2: baked 2." in page and "checkpoint (dashed) and its bake time (shaded)" in page


def test_a_health_gate_failing_during_the_bake_stops_the_roll(emulator, tmp_path):
    # "/" answers 200 after the canary's round and at the start of the bake, then 503.
    endpoint = HealthEndpoint(emulator, fail_after=2)
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1], rolling_reimage_checkpoint_delay=3,
                                       rolling_reimage_checkpoint_action="continue",
                                       rolling_reimage_health_url=endpoint.url + "/", rolling_reimage_health_timeout=1,
                                       rolling_reimage_health_validate_certs=False), tmp_path,
                        inventory=inventory(tmp_path))
    endpoint.close()
    assert proc.returncode != 0
    assert [name for _when, name in sent(emulator)] == [CANARY], "nothing after the checkpoint"
    assert {e["instance"] for e in emulator.events("instance_status")} == {CANARY}
    text = " ".join(proc.output.split())
    assert "checkpoint 1 of 1 (1 of 6 instances): the health gate failed during the bake" in text
    assert "answered 503" in text
    failed = {h for h, c in recap(proc.output).items() if c["failed"]}
    assert failed == {HOST + n for n in ALL}, "the canary's check failed, the rest was never reached"

    # A relaunch never goes past the checkpoint it did not pass: it stays paused there, sending nothing, and the
    # run after it (the next go-ahead) goes on.
    relaunch = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1]), tmp_path,
                            inventory=inventory(tmp_path))
    assert relaunch.returncode == 0, relaunch.output
    assert [name for _when, name in sent(emulator)] == [CANARY], "still nothing after the checkpoint"
    assert "did not pass checkpoint 1" in relaunch.output and "rolling reimage paused" in relaunch.output
    go_on = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1]), tmp_path,
                         inventory=inventory(tmp_path))
    assert go_on.returncode == 0, go_on.output
    assert sorted(name for _when, name in sent(emulator)) == sorted(ALL), "then every instance once"


def test_check_mode_shows_the_parts_and_checkpoints_and_sends_nothing(emulator, tmp_path):
    inv = inventory(tmp_path)
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1, "50%"], rolling_reimage_checkpoint_delay=5),
                        tmp_path, inventory=inv, extra=("--check", "--diff", "-v"))
    assert proc.returncode == 0, proc.output
    assert emulator.requests_made("POST") == [] and not (tmp_path / "roll.json").exists()
    text = proc.output
    assert "checkpoints at 1, 3 of 6 instances (0 already done), action stop, bake 5s" in text
    assert "part 1 of 3: 1 instance(s), up to checkpoint 1 of 2 (1 of 6 instances):" in text
    assert "checkpoint 1 of 2 (1 of 6 instances): bake 5s" in text and "then pause" in text
    assert ("part 2 of 3 (up to checkpoint 2 of 2 (3 of 6 instances), by a later run of the same roll): "
            "contoso-web/contoso-web-prod/WebRole1_IN_1, contoso-web/contoso-web-prod/WorkerRole1_IN_0") in text
    assert "+WebRole1_IN_0 (upgrade domain 0): reimaged in round 1" in " ".join(text.split()) or \
        "reimaged in round 1" in text, "--diff shows the canary's place in the plan"
    stats = recap(text)
    assert {h for h, c in stats.items() if c["changed"]} == {HOST + CANARY}
    hosts = reported(text)
    assert {h for h, (status, _r) in hosts.items() if status == "ok"} == {HOST + n for n in ALL if n != CANARY}
    assert all("would be waiting for the next part of the roll (checkpoint 1 of 2)" in result
               for h, (status, result) in hosts.items() if status == "ok")

    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=[1, "50%"],
                                       rolling_reimage_checkpoint_action="continue"),
                        tmp_path, inventory=inv, extra=("--check",))
    assert proc.returncode == 0, proc.output
    assert "part 3 of 3: 3 instance(s), to the end of the roll:" in proc.output and "round 5:" in proc.output
    assert all(c["changed"] == 1 for c in recap(proc.output).values())
    assert emulator.requests_made("POST") == []


@pytest.mark.parametrize("value, shown", [
    ([0], "0"), (["100%"], "'100%'"), ([1, "half"], "'half'"), ([1.5], "1.5")])
def test_bad_checkpoints_fail_every_host_before_any_request(emulator, tmp_path, value, shown):
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_checkpoints=value), tmp_path,
                        inventory=inventory(tmp_path))
    text = " ".join(proc.output.split())
    assert proc.returncode != 0
    assert "rolling_reimage_checkpoints: %s is neither a positive instance count nor a percentage" % shown in text
    assert emulator.requests_made() == [], "nothing is asked of the service"
    assert all(c["failed"] for c in recap(proc.output).values())

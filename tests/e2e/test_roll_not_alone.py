"""The roll is not alone on its deployment: second jobs, reboots from elsewhere, instances already down, a clock
that differs from the service's, a state file that disappears. Each is a real ansible-playbook (or ansible) run
against the emulator, judged from its event log: one reimage per instance, and never a batch sent while an
instance of another upgrade domain is down."""
import json
import re
import subprocess
import threading
import time

import pytest
import requests
import yaml

from tests.helpers import bin_path, run_adhoc, run_playbook
from tests.e2e.test_rolling_role import inventory, play, recap, reimaged

ALL = ["%s_IN_%d" % (role, k) for role in ("WebRole1", "WorkerRole1") for k in range(3)]


def start_playbook(emulator, tmp_path, name, role_vars, inv, env=None):
    """An ansible-playbook run in the background, with a home of its own (a second AWX job, another machine)."""
    home = tmp_path / ("home-" + name)
    home.mkdir(mode=0o700, exist_ok=True)
    playbook = tmp_path / ("%s.yml" % name)
    role_vars = dict({"rolling_reimage_state_path": str(home / "roll.json")}, **role_vars)
    playbook.write_text(play(tmp_path, **role_vars))
    environment = emulator.env(HOME=str(home), **(env or {}))
    log = open(tmp_path / ("%s.log" % name), "w+", encoding="utf-8")  # pylint: disable=consider-using-with
    proc = subprocess.Popen([bin_path("ansible-playbook"), str(playbook), "-i", str(inv)], env=environment,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    proc.log = log
    return proc


def finish(proc, timeout=300):
    proc.wait(timeout=timeout)
    proc.log.seek(0)
    proc.output = proc.log.read()
    proc.log.close()
    return proc


def sends_while_another_domain_was_down(emulator, deployment="contoso-web-prod", comp="reimage"):
    """Accepted operations of ``comp`` sent while an instance of another upgrade domain of the deployment was down,
    replayed from the event log: [(instance sent, {instance down: its upgrade domain})]."""
    domain = {}
    down = {}
    violations = []
    for event in emulator.events():
        if event["kind"] == "instance_status" and event["deployment"] == deployment:
            domain[event["instance"]] = event["upgrade_domain"]
            if event["status"] == "ReadyRole":
                down.pop(event["instance"], None)
            else:
                down[event["instance"]] = event["upgrade_domain"]
        elif (event["kind"] == "request" and event["method"] == "POST" and event["status"] == 202
              and "comp=" + comp in (event["query"] or "") and "/%s/" % deployment in event["path"]):
            instance = event["path"].rsplit("/", 1)[-1]
            ud = int(instance.rsplit("_", 1)[-1]) % 3  # the default topology: instance k in upgrade domain k % 3
            others = {name: d for name, d in down.items() if d != ud}
            if others:
                violations.append((instance, others))
    return violations


def changed_hosts(output):
    return {host for host, counters in recap(output).items() if counters["changed"]}


@pytest.mark.parametrize("stagger", [0, 1.5, 3])
def test_two_jobs_on_one_inventory_reimage_each_instance_once(emulator, tmp_path, stagger):
    inv = inventory(tmp_path)
    first = start_playbook(emulator, tmp_path, "first", {}, inv)
    time.sleep(stagger)
    second = start_playbook(emulator, tmp_path, "second", {}, inv)
    finish(first), finish(second)
    assert first.returncode == 0, first.output
    assert second.returncode == 0, second.output
    counts = reimaged(emulator)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1
    assert sends_while_another_domain_was_down(emulator) == []
    # Each instance is changed in exactly one job's recap; the other job followed it, and says so.
    one, two = changed_hosts(first.output), changed_hosts(second.output)
    assert not one & two and len(one | two) == 6, (one, two)
    assert "another client" in first.output + second.output or "another job" in first.output + second.output


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_jobs_on_disjoint_halves_never_take_two_domains_down(emulator, tmp_path, attempt):
    del attempt  # a race: run twice
    (tmp_path / "web").mkdir()
    (tmp_path / "worker").mkdir()
    web = start_playbook(emulator, tmp_path, "web", {}, inventory(tmp_path / "web", instances=ALL[:3]))
    time.sleep(0.2)
    worker = start_playbook(emulator, tmp_path, "worker", {}, inventory(tmp_path / "worker", instances=ALL[3:]))
    finish(web), finish(worker)
    assert web.returncode == 0, web.output
    assert worker.returncode == 0, worker.output
    counts = reimaged(emulator)
    assert len(counts) == 6 and set(counts.values()) == {1}
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1
    assert sends_while_another_domain_was_down(emulator) == []


def _reboot_when_the_roll_starts(emulator, instance, stuck=False):
    """A reboot of ``instance`` from elsewhere (a raw POST, as another tool sends it) as soon as the roll has taken
    its first instance down; answered 409 while the roll's own operation holds the lock, so sent until accepted."""
    if stuck:
        # Every attempt matches (the 409s too), so the one accepted is the one that sticks.
        emulator.fault(method="POST", path="%s.*comp=reboot" % instance, action={"stuck": True}, times=1000)

    def reboot():
        deadline = time.time() + 60
        while time.time() < deadline and not [e for e in emulator.events("instance_status")
                                              if e["status"] == "StoppingRole"]:
            time.sleep(0.05)
        while time.time() < deadline:
            answer = requests.post(
                "%s/%s/services/hostedservices/contoso-web/deploymentslots/production/roleinstances/%s?comp=reboot"
                % (emulator.url, emulator.subscription_id, instance), cert=emulator.info["certificate_path"],
                verify=emulator.info["ca_path"], headers={"x-ms-version": "2014-10-01"}, timeout=10)
            if answer.status_code == 202:
                return
            time.sleep(0.1)

    thread = threading.Thread(target=reboot, daemon=True)
    thread.start()
    return thread


def test_a_reboot_from_elsewhere_into_another_domain_holds_the_next_batch(emulator, tmp_path):
    emulator.timing(operation_seconds=1.5, recovery_seconds=1.5)
    thread = _reboot_when_the_roll_starts(emulator, "WorkerRole1_IN_2")
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inventory(tmp_path))
    thread.join(60)
    assert proc.returncode == 0, proc.output
    assert len(emulator.accepted("reboot")) == 1, "the reboot from elsewhere did happen"
    assert set(reimaged(emulator).values()) == {1} and len(reimaged(emulator)) == 6
    assert sends_while_another_domain_was_down(emulator) == [], "no batch while upgrade domain 2 was rebooting"


def test_an_instance_of_another_domain_that_stays_down_stops_the_roll_clearly(emulator, tmp_path):
    emulator.timing(operation_seconds=1.0, recovery_seconds=1.0)
    thread = _reboot_when_the_roll_starts(emulator, "WorkerRole1_IN_2", stuck=True)
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_availability_timeout=4), tmp_path,
                        inventory=inventory(tmp_path))
    thread.join(60)
    text = " ".join(proc.output.split())
    assert proc.returncode != 0
    assert sends_while_another_domain_was_down(emulator) == []
    done = {name for (_dep, name) in reimaged(emulator)}
    # The reboot takes the lock between two sends of upgrade domain 0, or after them: the roll stops there.
    assert done and {int(name[-1]) % 3 for name in done} == {0}, done
    assert re.search(r"upgrade domain [01] waits: WorkerRole1_IN_2 \(upgrade domain 2\) is [A-Za-z]+, down since", text)
    assert ("instances of other upgrade domains stayed down for 4s (rolling_reimage_availability_timeout): "
            "WorkerRole1_IN_2 (upgrade domain 2) is BusyRole, down since") in text
    assert "after RebootRoleInstance" in text
    failed = {h for h, c in recap(proc.output).items() if c["failed"]}
    assert failed == {"contoso-web.production." + n for n in ALL if n not in done}


def test_an_instance_down_at_plan_time_is_reimaged_first_with_allow_unready(emulator, tmp_path):
    emulator.fault(method="POST", path="WorkerRole1_IN_1", action={"stuck": True})
    rc, _result, output = run_adhoc(emulator, "role_instance_reboot", {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WorkerRole1_IN_1"})
    assert rc == 0, output
    emulator.server.emulator.events.clear()
    # Old enough that no operation explains it: only allow_unready lets the roll start.
    time.sleep(4)  # its reboot ended more than rolling_reimage_ready_timeout ago: no operation explains it now
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_allow_unready=True, rolling_reimage_ready_timeout=4,
                                       rolling_reimage_availability_timeout=30), tmp_path, inventory=inventory(tmp_path))
    assert proc.returncode == 0, proc.output
    order = [e["path"].rsplit("/", 1)[-1] for e in emulator.accepted()]
    assert order[0] == "WorkerRole1_IN_1" and set(order[:2]) == {"WorkerRole1_IN_1", "WebRole1_IN_1"}, order
    assert set(reimaged(emulator).values()) == {1} and len(order) == 6
    assert sends_while_another_domain_was_down(emulator) == []
    assert "a target, so its upgrade domain goes first" in proc.output


def test_one_inventory_spelled_two_ways_is_one_roll(emulator, tmp_path):
    by_slot = inventory(tmp_path)
    hosts = yaml.safe_load(by_slot.read_text())
    for host in hosts["all"]["hosts"].values():
        host.pop("deployment_slot")
        host.update(deployment_name="CONTOSO-WEB-PROD", role_instance=host["role_instance"].lower(),
                    cloud_service="Contoso-Web")
    by_name = tmp_path / "by_name.yml"
    by_name.write_text(yaml.safe_dump(hosts))
    first = start_playbook(emulator, tmp_path, "slot", {}, by_slot)
    second = start_playbook(emulator, tmp_path, "name", {}, by_name)
    finish(first), finish(second)
    assert first.returncode == 0, first.output
    assert second.returncode == 0, second.output
    assert set(reimaged(emulator).values()) == {1} and len(reimaged(emulator)) == 6
    assert sends_while_another_domain_was_down(emulator) == []
    # Run again by the other spelling, from the first one's home: the same roll, the same state file.
    again = start_playbook(emulator, tmp_path, "slot", {}, by_name)
    finish(again)
    assert again.returncode == 0 and set(reimaged(emulator).values()) == {1}
    states = sorted(p for p in (tmp_path / "home-slot").glob("*.json") if not p.name.endswith(".summary.json"))
    assert [p.name for p in states] == ["roll.json"]
    assert "6 skipped" in again.output


def test_a_lost_answer_is_not_sent_again_when_the_controllers_clock_runs_200s_ahead(emulator, tmp_path):
    emulator.clock(-200)  # the service's clock 200 s behind the controller's
    emulator.fault(method="POST", path="WebRole1_IN_0", action={"drop": "after"})
    rc, result, output = run_adhoc(emulator, "role_instance_reimage", {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0",
        "timeout": 5, "retries": 1})
    assert rc == 0, output
    assert len(emulator.accepted()) == 1, "sent once, its lost answer found in the history"
    assert result["changed"] is True and result["request_id"] == emulator.accepted()[0]["request_id"]
    assert "was lost" in output
    assert "seconds ahead of the service" not in output, "200 s is within the skew that changes nothing"


def test_a_state_file_removed_mid_roll_still_reports_every_host(emulator, tmp_path):
    state = tmp_path / "roll.json"
    tasks = tmp_path / "remove_state.yml"
    tasks.write_text("""
- name: Lose the roll's state file after the last round (a cleaned-up temporary folder, another job's clean-up)
  ansible.builtin.file:
    path: "%s"
    state: absent
  run_once: true
  when: rolling_reimage_round + 1 == rolling_reimage_plan.rounds
""" % state)
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_health_tasks=str(tasks)), tmp_path,
                        inventory=inventory(tmp_path))
    assert proc.returncode == 0, proc.output
    assert set(reimaged(emulator).values()) == {1} and len(reimaged(emulator)) == 6
    assert changed_hosts(proc.output) == {"contoso-web.production." + n for n in ALL}
    text = " ".join(proc.output.split())
    assert "rebuilt from the service's operation history" in text
    summary = json.loads(state.read_text())
    assert summary["rebuilt"] is True and summary["status"] == "complete"

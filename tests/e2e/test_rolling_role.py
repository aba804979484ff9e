"""The rolling_reimage role through real ansible-playbook runs, proved with the emulator's events."""
import collections
import json
import pathlib
import re
import subprocess
import sys
import time

import yaml

from tests.helpers import HealthEndpoint, bin_path, kill_tree, run_playbook

DEPLOYMENTS = {"production": "contoso-web-prod", "staging": "contoso-web-staging"}


def inventory(tmp_path, slots=("production",), instances=None, extra_hostvars=None):
    hosts = {}
    for slot in slots:
        for role in ("WebRole1", "WorkerRole1"):
            for k in range(3):
                name = "%s_IN_%d" % (role, k)
                if instances and name not in instances:
                    continue
                hosts["contoso-web.%s.%s" % (slot, name)] = dict(
                    {"cloud_service": "contoso-web", "deployment_slot": slot, "role_instance": name},
                    **(extra_hostvars or {}))
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}))
    return path


def play(tmp_path, **role_vars):
    role_vars.setdefault("rolling_reimage_state_path", str(tmp_path / "roll.json"))
    return """
- hosts: all
  gather_facts: false
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars: %s
""" % json.dumps(role_vars)


def recap(output):
    """PLAY RECAP counters per host."""
    stats = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        if " : ok=" in line:
            host, counters = line.split(" : ", 1)
            stats[host.strip()] = {k: int(v) for k, v in (c.split("=") for c in counters.split())}
    return stats


def reimaged(emulator):
    """Accepted reimages per (deployment path part, instance)."""
    counts = collections.Counter()
    for event in emulator.accepted():
        parts = event["path"].split("/")
        counts[(parts[-3], parts[-1])] += 1
    return counts


def ready_order(emulator, deployment):
    """Upgrade domains in the order their instances were taken down, per deployment."""
    order = []
    for event in emulator.events("instance_status"):
        if event["deployment"] == deployment and event["status"] == "StoppingRole":
            order.append(event["upgrade_domain"])
    return order


def test_roll_two_deployments_at_once_one_upgrade_domain_at_a_time(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inventory(tmp_path, ("production", "staging")))
    assert proc.returncode == 0, proc.output
    counts = reimaged(emulator)
    assert len(counts) == 12 and set(counts.values()) == {1}, "every target reimaged exactly once"
    for deployment in DEPLOYMENTS.values():
        assert ready_order(emulator, deployment) == [0, 0, 1, 1, 2, 2]
    availability = emulator.availability()
    for key in ("contoso-web/contoso-web-prod", "contoso-web/contoso-web-staging"):
        assert availability[key]["max_unavailable_upgrade_domains"] == 1
        assert availability[key]["max_unavailable_instances"] == 2
    starts = {e["deployment"]: e["time"] for e in reversed(emulator.events("instance_status"))}
    assert abs(starts["contoso-web-prod"] - starts["contoso-web-staging"]) < 1.0, "deployments roll together"
    assert "batch 1/3, upgrade domain 0: reimaging WebRole1_IN_0, WorkerRole1_IN_0" in proc.output
    assert "rolling reimage complete" in proc.output and "[WARNING]" not in proc.output


def test_batch_size_and_untargeted_instances(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_batch_size=1), tmp_path,
                        inventory=inventory(tmp_path, instances=("WebRole1_IN_0", "WorkerRole1_IN_0", "WebRole1_IN_2")))
    assert proc.returncode == 0, proc.output
    assert reimaged(emulator) == {("contoso-web-prod", "WebRole1_IN_0"): 1, ("contoso-web-prod", "WorkerRole1_IN_0"): 1,
                                  ("contoso-web-prod", "WebRole1_IN_2"): 1}
    touched = {e["instance"] for e in emulator.events("instance_status")}
    assert touched == {"WebRole1_IN_0", "WorkerRole1_IN_0", "WebRole1_IN_2"}, "untargeted instances untouched"
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_instances"] == 1


def test_an_instance_stuck_after_an_operation_holds_the_roll_and_one_stuck_for_long_refuses_it(emulator, tmp_path):
    emulator.fault(method="POST", path="WorkerRole1_IN_2", action={"stuck": True})
    run_playbook(emulator, """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Break one instance that is not a target
      azure_classic.cloud_services.role_instance_reimage:
        cloud_service: contoso-web
        deployment_slot: production
        role_instance: WorkerRole1_IN_2
""", tmp_path)
    emulator.server.emulator.events.clear()
    # Just after its operation it may still be recovering: the batch of another upgrade domain waits, then stops.
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_availability_timeout=3), tmp_path,
                        inventory=inventory(tmp_path, instances=("WebRole1_IN_0",)))
    text = " ".join(proc.output.split())
    assert proc.returncode != 0 and emulator.accepted() == []
    assert "instance WorkerRole1_IN_2 is BusyRole after ReimageRoleInstance" in text
    assert ("instances of other upgrade domains stayed down for 3s (rolling_reimage_availability_timeout): "
            "WorkerRole1_IN_2 (upgrade domain 2) is BusyRole, down since ") in text
    # Once its operation is older than ready_timeout, nothing explains it: preflight refuses, listing it.
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_ready_timeout=1), tmp_path,
                        inventory=inventory(tmp_path, instances=("WebRole1_IN_0",)))
    assert proc.returncode != 0
    assert "preflight refused the roll" in " ".join(proc.output.split()) and "WorkerRole1_IN_2" in proc.output
    assert emulator.accepted() == []
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_allow_unready=True, rolling_reimage_ready_timeout=1),
                        tmp_path, inventory=inventory(tmp_path, instances=("WebRole1_IN_0",)))
    assert proc.returncode == 0, proc.output
    assert "accepted (rolling_reimage_allow_unready): not a target, so batches do not wait for it" in proc.output


def test_preflight_refuses_a_missing_instance_and_waits_for_another_clients_operation(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path), tmp_path,
                        inventory=inventory(tmp_path, extra_hostvars={"role_instance": "WebRole1_IN_9"}))
    assert proc.returncode != 0 and "role instance WebRole1_IN_9 does not exist" in " ".join(proc.output.split())
    emulator.timing(operation_seconds=30)
    import requests
    requests.post("%s/%s/services/hostedservices/contoso-web/deploymentslots/production/roleinstances/WebRole1_IN_1"
                  "?comp=reboot" % (emulator.url, emulator.subscription_id), cert=emulator.info["certificate_path"],
                  verify=emulator.info["ca_path"], headers={"x-ms-version": "2014-10-01"}, timeout=10)
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_availability_timeout=2), tmp_path,
                        inventory=inventory(tmp_path))
    holder = emulator.accepted("reboot")[0]["request_id"]
    text = " ".join(proc.output.split())  # ansible-core 2.16 wraps the error across lines
    assert proc.returncode != 0 and emulator.accepted() == []
    assert "RebootRoleInstance %s started" % holder in text and "is under way" in text
    assert "WebRole1_IN_1 (upgrade domain 1) is " in text and "after RebootRoleInstance %s" % holder in text


def test_failed_operation_stops_the_deployment_and_resume_skips_what_was_done(emulator, tmp_path):
    # Both deployments have a WebRole1_IN_1 and roll in parallel: aim at production's.
    emulator.fault(method="POST", path="contoso-web-prod/roleinstances/WebRole1_IN_1", action={
        "fail_operation": {"code": "InternalError", "message": "The host failed."}})
    inv = inventory(tmp_path, ("production", "staging"))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv, env={
        "ANSIBLE_RETRY_FILES_ENABLED": "true", "ANSIBLE_RETRY_FILES_SAVE_PATH": str(tmp_path / "retry")})
    assert proc.returncode != 0
    counts = reimaged(emulator)
    prod_ud2 = [e for e in emulator.events("instance_status")
                if e["deployment"] == "contoso-web-prod" and e["upgrade_domain"] == 2]
    assert prod_ud2 == [], "later batches of the failed deployment are untouched"
    staging = [e for e in emulator.events("instance_status") if e["deployment"] == "contoso-web-staging"]
    every = {"%s_IN_%d" % (role, k) for role in ("WebRole1", "WorkerRole1") for k in range(3)}
    assert {e["instance"] for e in staging} == every
    state = json.loads((tmp_path / "roll.json").read_text())
    assert state["status"] == "failed"
    outcomes = collections.Counter(i["outcome"] for i in state["instances"].values())
    assert outcomes == {"done": 8, "failed": 1, "pending": 3}
    assert "1 failed" in proc.output and "3 untouched" in proc.output

    # Each host reports its own outcome: the failed instance and the three its failure left out (the rest of
    # its batch and the next upgrade domain) are the failed hosts; the instances reimaged are changed.
    stats = recap(proc.output)
    failed = {h for h, s in stats.items() if s["failed"]}
    assert failed == {"contoso-web.production.%s" % n for n in (
        "WebRole1_IN_1", "WorkerRole1_IN_1", "WebRole1_IN_2", "WorkerRole1_IN_2")}
    for host, counters in stats.items():
        if host not in failed:
            assert counters["changed"] >= 1, host
    retry = list((tmp_path / "retry").glob("*.retry"))
    assert len(retry) == 1 and set(retry[0].read_text().split()) == failed, "--limit @retry names the right hosts"
    fatal = [line for line in proc.output.splitlines() if line.startswith("fatal: ")]
    assert sorted(line.split("]")[0][8:] for line in fatal) == sorted(failed), "one failure per failed host, no other"
    assert "contoso-web-prod/WebRole1_IN_1 (upgrade domain 1): The host failed" in [
        line for line in fatal if "WebRole1_IN_1]" in line][0]

    before = sum(counts.values())
    emulator.server.faults.clear()
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert proc.returncode == 0, proc.output
    again = reimaged(emulator)
    assert sum(again.values()) - before == 4, "resume reimages only the failed and untouched instances"
    assert "already reimaged by an earlier run of this roll" in proc.output and "8 skipped" in proc.output
    stats = recap(proc.output)
    assert sum(1 for s in stats.values() if s["changed"]) == 4 and not any(s["failed"] for s in stats.values())


def test_instance_that_never_recovers_times_out(emulator, tmp_path):
    emulator.fault(method="POST", path="WorkerRole1_IN_0", action={"stuck": True})
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_ready_timeout=4), tmp_path,
                        inventory=inventory(tmp_path))
    assert proc.returncode != 0
    assert "WorkerRole1_IN_0: not ReadyRole within 4s" in proc.output
    assert not [e for e in emulator.events("instance_status") if e["upgrade_domain"] == 1]


def test_health_gate_url_and_tasks(emulator, tmp_path):
    tasks = tmp_path / "health.yml"
    tasks.write_text("""
- name: Record the round
  ansible.builtin.lineinfile:
    path: "%s"
    line: "round {{ rolling_reimage_round }}"
    create: true
    mode: "0600"
  run_once: true
  delegate_to: localhost
- name: Fail after the second round
  ansible.builtin.fail:
    msg: health check failed after round {{ rolling_reimage_round }}
  when: rolling_reimage_round == 1
""" % (tmp_path / "rounds.txt"))
    endpoint = HealthEndpoint(emulator)
    health = endpoint.url + "/"
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_health_tasks=str(tasks),
                                       rolling_reimage_health_url=health,
                                       rolling_reimage_health_validate_certs=False), tmp_path,
                        inventory=inventory(tmp_path))
    assert proc.returncode != 0
    assert (tmp_path / "rounds.txt").read_text().split("\n")[:2] == ["round 0", "round 1"]
    assert "health gate: %s answered 200" % health in proc.output
    assert "health check failed after round 1" in proc.output
    assert not [e for e in emulator.events("instance_status") if e["upgrade_domain"] == 2]

    # A health URL may carry credentials for the check; they are used, and shown nowhere.
    secret_url = endpoint.url.replace("://", "://gate:hunter2@", 1) + "/nope"
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_fresh=True,
                                       rolling_reimage_health_url=secret_url,
                                       rolling_reimage_health_timeout=1,
                                       rolling_reimage_health_validate_certs=False), tmp_path,
                        inventory=inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1")))
    assert proc.returncode != 0 and "health gate" in proc.output and "answered 404" in proc.output
    assert "://***@" in proc.output and "hunter2" not in proc.output
    endpoint.close()
    state_text = (tmp_path / "roll.json").read_text()
    assert "health gate" in state_text and "hunter2" not in state_text, "the stop reason names the URL redacted"


def test_bad_connection_and_health_url_refuse_the_roll_before_any_request(emulator, tmp_path):
    inv = inventory(tmp_path, instances=("WebRole1_IN_0",))
    for role_vars, message in [
            ({"rolling_reimage_connection": {"timeout": "x"}}, "rolling_reimage_connection: "),
            ({"rolling_reimage_connection": {"retries": [1]}}, "rolling_reimage_connection: "),
            ({"rolling_reimage_health_url": "http://[::1"}, "health_url 'http://[::1' is not a valid URL"),
            ({"rolling_reimage_health_url": "ftp://gate:hunter2@health.test/"},
             "health_url 'ftp://***@health.test/' must be an http:// or https:// URL")]:
        proc = run_playbook(emulator, play(tmp_path, **role_vars), tmp_path, inventory=inv)
        text = " ".join(proc.output.split())
        assert proc.returncode != 0 and message in text, proc.output
        assert "Traceback" not in proc.output and "hunter2" not in proc.output
        assert emulator.requests_made() == [], "nothing is sent: %s" % role_vars


def test_connection_values_from_a_role_variable_are_converted_like_module_arguments(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_connection={"validate_certs": "no", "timeout": "30"}),
                        tmp_path, inventory=inventory(tmp_path, instances=("WebRole1_IN_0",)), extra=["--check"])
    assert proc.returncode == 0, proc.output
    assert "validate_certs is false" in " ".join(proc.output.split()), "'no' is false, as it is for a module"
    assert emulator.requests_made("POST") == []


def test_conflict_from_an_operation_the_role_did_not_start(emulator, tmp_path):
    """After round 1, someone else reimages an instance of another upgrade domain; round 2 waits until it is
    ReadyRole again (before the lock is even tried), then goes on."""
    emulator.timing(operation_seconds=6, recovery_seconds=0.5)
    tasks = tmp_path / "foreign.yml"
    tasks.write_text("""
- name: Someone else reimages an instance of the same deployment
  azure_classic.cloud_services.role_instance_reimage:
    cloud_service: contoso-web
    deployment_slot: production
    role_instance: WorkerRole1_IN_2
    wait: false
  run_once: true
  delegate_to: localhost
  when: rolling_reimage_round == 0
""")
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_health_tasks=str(tasks)), tmp_path,
                        inventory=inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1")))
    assert proc.returncode == 0, proc.output
    posts = [(e["path"].rsplit("/", 1)[-1], e["status"]) for e in emulator.requests_made("POST")]
    assert posts == [("WebRole1_IN_0", 202), ("WorkerRole1_IN_2", 202), ("WebRole1_IN_1", 202)]
    assert "ConflictError" not in proc.output
    assert "upgrade domain 1 waits: WorkerRole1_IN_2 (upgrade domain 2) is " in proc.output
    ready = [e["time"] for e in emulator.events("instance_status")
             if e["instance"] == "WorkerRole1_IN_2" and e["status"] == "ReadyRole"]
    assert emulator.accepted()[-1]["time"] > ready[0], "upgrade domain 1 only once upgrade domain 2 was back"


def test_serial_play_stays_safe(emulator, tmp_path):
    playbook = """
- hosts: all
  gather_facts: false
  serial: 2
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars:
        rolling_reimage_fresh: true
"""
    proc = run_playbook(emulator, playbook, tmp_path, inventory=inventory(tmp_path))
    assert proc.returncode == 0, proc.output
    assert sorted(reimaged(emulator).values()) == [1] * 6
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1


def test_upgrade_domain_read_from_the_api_overrides_nothing_and_hostvars_are_checked(emulator, tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"bad": {"cloud_service": "contoso-web"}},
                                            "vars": {"ansible_connection": "local"}}}))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=path)
    assert proc.returncode != 0 and "host bad does not name a role instance" in " ".join(proc.output.split())
    assert emulator.requests_made() == []


def test_collection_playbook_with_target_group_and_connection_from_role_variable(emulator, tmp_path):
    info = emulator.info
    hosts = {"contoso-web.production.WebRole1_IN_%d" % k: {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_%d" % k}
        for k in range(3)}
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "children": {
        "web": {"hosts": hosts}, "other": {"hosts": {"contoso-web.production.WorkerRole1_IN_0": {
            "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WorkerRole1_IN_0"}}}}}}))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"target": "web", "rolling_reimage_state_path": str(tmp_path / "roll.json"),
                                 "rolling_reimage_pause_seconds": 1,
                                 "rolling_reimage_connection": {
                                     "subscription_id": info["subscription_id"],
                                     "management_certificate": info["certificate_path"],
                                     "management_url": info["management_url"], "ca_path": info["ca_path"]}}))
    import subprocess
    from tests.helpers import bin_path
    env = emulator.env(AZURE_SUBSCRIPTION_ID=None, AZURE_CERT_PATH=None, AZURE_MANAGEMENT_URL=None,
                       AZURE_CA_PATH=None, ANSIBLE_SHOW_CUSTOM_STATS="1")
    proc = subprocess.run([bin_path("ansible-playbook"), "-i", str(inv), "azure_classic.cloud_services.rolling_reimage",
                           "-e", "@%s" % extra], env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert sorted(name for dep, name in reimaged(emulator)) == ["WebRole1_IN_0", "WebRole1_IN_1", "WebRole1_IN_2"]
    assert "Pause between batches" in output
    assert "CUSTOM STATS" in output and '"status": "complete"' in output.replace("'", '"')


def test_failure_tolerance(emulator, tmp_path):
    emulator.fault(method="POST", path="WebRole1_IN_0", action={
        "fail_operation": {"code": "InternalError", "message": "The host failed."}})
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_max_failures=1), tmp_path,
                        inventory=inventory(tmp_path))
    assert "5 reimaged, 1 failed, 0 untouched" in proc.output, "the roll went on past the tolerated failure"
    assert len(reimaged(emulator)) == 6
    # The instance still failed: its host says so (and so the retry file and AWX's failed hosts).
    assert proc.returncode != 0
    assert {h for h, s in recap(proc.output).items() if s["failed"]} == {"contoso-web.production.WebRole1_IN_0"}
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1


def test_a_tolerated_failure_never_takes_a_second_upgrade_domain_down(emulator, tmp_path):
    """An operation that outlives its timeout is still running: the deployment stops whatever max_failures says."""
    emulator.timing(operation_seconds=3, recovery_seconds=4)
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_max_failures=5, rolling_reimage_operation_timeout=1),
                        tmp_path, inventory=inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1")))
    assert proc.returncode != 0
    time.sleep(8)  # let the operation that timed out end and its instance recover
    assert reimaged(emulator) == {("contoso-web-prod", "WebRole1_IN_0"): 1}, "nothing sent after a timeout"
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1


def test_a_refused_roll_fails_every_host(emulator, tmp_path):
    inv = inventory(tmp_path, extra_hostvars={"role_instance": "WebRole1_IN_9"})
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert proc.returncode != 0
    stats = recap(proc.output)
    assert stats and all(s["failed"] for s in stats.values()), stats
    text = " ".join(proc.output.split())  # ansible-core 2.16 wraps the error across lines
    assert text.count("host contoso-web.production.WebRole1_IN_2: role instance WebRole1_IN_9 does not "
                      "exist") == 1, "the reason is printed once"
    assert emulator.requests_made("POST") == []


def test_every_hosts_bad_variables_are_named_in_one_run_with_nothing_sent(emulator, tmp_path):
    """Input errors come before any request, so "a missing instance" here is a host without its role_instance: an
    instance absent from its deployment can only be found by reading the service, and the preflight then names it
    together with every other problem the service shows (test_preflight_lists_every_problem)."""
    path = inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1", "WebRole1_IN_2"))
    data = yaml.safe_load(path.read_text())
    hosts = data["all"]["hosts"]
    hosts["contoso-web.production.WebRole1_IN_0"]["deployment_slot"] = "prod"  # a bad slot
    del hosts["contoso-web.production.WebRole1_IN_2"]["role_instance"]  # a missing instance
    path.write_text(yaml.safe_dump(data))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=path)
    assert proc.returncode != 0
    text = "".join(proc.output.split())  # ansible-core 2.16 wraps the error across lines, also after a hyphen
    for said in ("2 hosts do not name a role instance the roll can address",
                 "host contoso-web.production.WebRole1_IN_0: deployment_slot 'prod' is not a slot",
                 "host contoso-web.production.WebRole1_IN_2 does not name a role instance", "(missing: role_instance)"):
        assert "".join(said.split()) in text, (said, proc.output)
    stats = recap(proc.output)
    assert sorted(stats) == sorted(hosts) and all(s["failed"] for s in stats.values()), stats
    assert emulator.requests_made() == [], "nothing is sent, not even a read"


def test_hosts_outside_the_play_fail_the_run(emulator, tmp_path):
    emulator.fault(method="POST", path="WebRole1_IN_0", action={
        "fail_operation": {"code": "InternalError", "message": "The host failed."}})
    inv = inventory(tmp_path, instances=("WebRole1_IN_0", "WorkerRole1_IN_0"))
    proc = run_playbook(emulator, """
- hosts: localhost
  gather_facts: false
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars:
        rolling_reimage_hosts: "{{ groups['all'] }}"
        rolling_reimage_state_path: %s
""" % (tmp_path / "roll.json"), tmp_path, inventory=inv)
    assert proc.returncode != 0
    assert "failed for instances of hosts outside this play: contoso-web.production.WebRole1_IN_0" in proc.output


def test_one_instance_named_in_two_spellings_is_rolled_once(emulator, tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "hosts": {
        "a": {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"},
        "b": {"cloud_service": "Contoso-Web", "deployment_name": "contoso-web-prod", "role_instance": "webrole1_in_0"}}}}))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=path)
    assert proc.returncode == 0, proc.output
    assert reimaged(emulator) == {("contoso-web-prod", "WebRole1_IN_0"): 1}
    stats = recap(proc.output)
    assert sorted(stats[h]["changed"] for h in "ab") == [0, 1], "one host reports the reimage, the other is ok"
    assert not stats["a"]["failed"] and not stats["b"]["failed"]


def hosts_of(inv_path):
    return sorted(yaml.safe_load(pathlib.Path(inv_path).read_text())["all"]["hosts"])


def test_check_mode_sends_nothing_writes_nothing_and_each_host_says_what_would_happen(emulator, tmp_path):
    inv = inventory(tmp_path)
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv, extra=("--check", "--diff"))
    assert proc.returncode == 0, proc.output
    assert emulator.requests_made("POST") == [], "check mode sends no mutating request"
    assert emulator.requests_made("GET"), "the preflight reads live state"
    assert not (tmp_path / "roll.json").exists(), "nothing a later real run would trust is written"
    assert "check mode: nothing is sent" in proc.output
    assert "contoso-web/contoso-web-prod upgrade domain 0: WebRole1_IN_0, WorkerRole1_IN_0" in proc.output
    assert "reimaged in round 3" in proc.output, "--diff shows each host's place in the plan"
    stats = recap(proc.output)
    assert sorted(stats) == hosts_of(inv)
    assert all(s["changed"] == 1 and s["failed"] == 0 for s in stats.values()), stats

    # A real run afterwards plans the same roll from scratch, then check mode shows it as already done.
    assert run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv).returncode == 0
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv, extra=("--check",))
    assert proc.returncode == 0, proc.output
    assert len(emulator.accepted()) == 6
    assert all(s["changed"] == 0 for s in recap(proc.output).values())


def test_only_the_linear_strategy_runs_a_roll(emulator, tmp_path):
    for strategy in ("free", "host_pinned"):
        proc = run_playbook(emulator, """
- hosts: all
  gather_facts: false
  strategy: %s
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
""" % strategy, tmp_path, inventory=inventory(tmp_path))
        assert proc.returncode != 0
        assert "needs the linear strategy, and this play uses '%s'" % strategy in proc.output
    assert emulator.requests_made("POST") == [], "nothing is sent under another strategy"


def _kill_when(proc, condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            kill_tree(proc.pid)  # the workers too: they run in sessions of their own
            proc.wait(timeout=30)
            return True
        time.sleep(0.1)
    return False


def _one_reimage_each(emulator, expected):
    counts = reimaged(emulator)
    assert len(counts) == expected and set(counts.values()) == {1}, counts
    for key, figures in emulator.availability().items():
        assert figures["max_unavailable_upgrade_domains"] <= 1, (key, figures)


def test_crash_while_a_reimage_waits_for_its_answer_then_rerun_sends_each_once(emulator, tmp_path):
    emulator.timing(operation_seconds=3, recovery_seconds=3)
    emulator.fault(method="POST", path="WebRole1_IN_1", action={"delay": 60})
    inv = inventory(tmp_path)
    playbook = tmp_path / "crash.yml"
    playbook.write_text(play(tmp_path))
    proc = subprocess.Popen([bin_path("ansible-playbook"), str(playbook), "-i", str(inv)], env=emulator.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert _kill_when(proc, lambda: any("WebRole1_IN_1" in e["path"] for e in emulator.accepted())), \
        "the delayed reimage was accepted before the crash"
    state = json.loads((tmp_path / "roll.json").read_text())
    crashed = state["instances"]["contoso-web/contoso-web-prod/webrole1_in_1"]
    # Saved at most once a second, the file may not even know the reimage was sent; it never has its id.
    assert crashed["outcome"] in ("pending", "started") and crashed["request_id"] is None, "the answer never arrived"
    emulator.server.faults.clear()
    rerun = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert rerun.returncode == 0, rerun.output
    assert "following 1 reimage(s) an earlier run of this roll (or another job) started: WebRole1_IN_1" in rerun.output
    _one_reimage_each(emulator, 6)


def test_operation_timeout_then_rerun_follows_the_operation(emulator, tmp_path):
    emulator.timing(operation_seconds=5, recovery_seconds=0.5)
    inv = inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1"))
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_operation_timeout=1), tmp_path, inventory=inv)
    assert proc.returncode != 0
    assert "did not end within 1s; it was not cancelled" in proc.output
    assert recap(proc.output)["contoso-web.production.WebRole1_IN_0"]["failed"] == 1
    rerun = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert rerun.returncode == 0, rerun.output
    _one_reimage_each(emulator, 2)
    stats = recap(rerun.output)
    assert stats["contoso-web.production.WebRole1_IN_0"]["changed"] == 0, "followed, reported as already done"
    assert stats["contoso-web.production.WebRole1_IN_1"]["changed"] == 1


def test_failed_roll_rerun_on_a_machine_without_its_state_finishes_it(emulator, tmp_path):
    """A relaunch in a fresh container: another HOME, no state file; the service's history decides."""
    tasks = tmp_path / "gate.yml"
    tasks.write_text("""
- name: Fail the gate after the first round
  ansible.builtin.fail:
    msg: the gate failed
  when: rolling_reimage_round == 0
  run_once: true
""")
    inv = inventory(tmp_path)
    first_home, second_home = tmp_path / "home1", tmp_path / "home2"
    first_home.mkdir()
    second_home.mkdir()
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_state_path="", rolling_reimage_health_tasks=str(tasks)),
                        tmp_path, inventory=inv, env={"HOME": str(first_home)})
    assert proc.returncode != 0
    assert list((first_home / ".ansible" / "rolling_reimage").glob("roll-*.json")), "state in the first HOME"
    assert len(emulator.accepted()) == 2
    rerun = run_playbook(emulator, play(tmp_path, rolling_reimage_state_path=""), tmp_path, inventory=inv,
                         env={"HOME": str(second_home)})
    assert rerun.returncode == 0, rerun.output
    assert "2 instance(s) already reimaged by an earlier run of this roll" in rerun.output
    _one_reimage_each(emulator, 6)
    # Only what the service shows decides: with rolling_reimage_fresh the same instances roll again.
    # A new roll of the same instances names its own start; a relaunch with the same variables resumes it.
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    time.sleep(2)
    again = run_playbook(emulator, play(tmp_path, rolling_reimage_state_path="", rolling_reimage_since=since),
                         tmp_path, inventory=inv, env={"HOME": str(second_home)})
    assert again.returncode == 0, again.output
    (tmp_path / "again.log").write_text(again.output)
    assert sorted(reimaged(emulator).values()) == [2] * 6, "the new roll reimaged each instance once"
    relaunch = run_playbook(emulator, play(tmp_path, rolling_reimage_state_path="", rolling_reimage_since=since),
                            tmp_path, inventory=inv, env={"HOME": str(first_home)})
    assert relaunch.returncode == 0, relaunch.output
    (tmp_path / "relaunch.log").write_text(relaunch.output)  # kept with the test's folder, for a failure's post-mortem
    (tmp_path / "events.json").write_text(json.dumps(emulator.events(), default=str))
    assert sorted(reimaged(emulator).values()) == [2] * 6, "the relaunch found the new roll done"


def test_ansible_runner_events_name_the_failed_instance(emulator, tmp_path):
    emulator.fault(method="POST", path="WorkerRole1_IN_0", action={
        "fail_operation": {"code": "InternalError", "message": "The host failed."}})
    private = tmp_path / "job"
    (private / "project").mkdir(parents=True)
    (private / "inventory").mkdir()
    (private / "project" / "roll.yml").write_text(play(tmp_path, rolling_reimage_max_failures=1))
    (private / "inventory" / "hosts.yml").write_text(inventory(tmp_path).read_text())
    env = emulator.env(ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    env["PATH"] = "%s:%s" % (pathlib.Path(sys.executable).parent, env.get("PATH", ""))
    proc = subprocess.run([bin_path("ansible-runner"), "run", str(private), "-p", "roll.yml"], env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr  # the roll went on (max_failures), the host failed
    events = []
    for path in (private / "artifacts").glob("*/job_events/*.json"):
        events.append(json.loads(path.read_text()))
    report = [e for e in events if e["event"] in ("runner_on_ok", "runner_on_failed")
              and e["event_data"].get("task") == "Report this instance's outcome"]
    failed = {e["event_data"]["host"] for e in report if e["event"] == "runner_on_failed"}
    changed = {e["event_data"]["host"] for e in report if e["event_data"]["res"].get("changed")}
    assert failed == {"contoso-web.production.WorkerRole1_IN_0"}
    assert len(changed) == 5 and not failed & changed
    stats = [e for e in events if e["event"] == "playbook_on_stats"][0]["event_data"]
    assert set(stats["failures"]) == failed, "a tolerated failure is still a failed host"


# -- rolling reboot and rolling rebuild, and the roll's HTML report (issue 16) --------------------------------

def role_operation_posts(emulator):
    return [e for e in emulator.requests_made("POST") if "comp=" in (e["query"] or "")]


def per_instance(events):
    counts = collections.Counter()
    for event in events:
        parts = event["path"].split("/")
        counts[(parts[-3], parts[-1])] += 1
    return counts


def report_path_in(output):
    """The report the roll's summary names (``report: <path>``)."""
    found = re.findall(r"^report: (\S+)$", output, re.M)
    assert found, "no report named in the output"
    return pathlib.Path(found[-1])


def report_of(path, instances):
    """The report at ``path``: owner-only, valid self-contained HTML with a row for every (deployment, instance)
    of ``instances``; returns its visible text."""
    from tests.html_check import check_report, table_rows
    assert path.exists(), "no report at %s" % path
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text(encoding="utf-8")
    _tags, visible = check_report(text)
    named = {(row[1].split("/")[-1], row[2]) for row in table_rows(text) if len(row) > 2}
    missing = sorted(set(instances) - named)
    assert not missing, "the report does not name %s" % missing
    return visible


def test_rolling_reboot_sends_only_reboots_one_per_instance_one_upgrade_domain_at_a_time(emulator, tmp_path):
    inv = inventory(tmp_path, ("production", "staging"))
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_operation="reboot"), tmp_path, inventory=inv,
                        extra=("--check", "--diff"))
    assert proc.returncode == 0, proc.output
    assert emulator.requests_made("POST") == [] and "rolling reboot (check mode: nothing is sent)" in proc.output
    assert "rebooted in round 3" in proc.output and not list(tmp_path.glob("*.html"))

    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_operation="reboot"), tmp_path, inventory=inv,
                        env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    assert proc.returncode == 0, proc.output
    posts = role_operation_posts(emulator)
    assert {p["query"] for p in posts} == {"comp=reboot"}, ("only reboots are sent", [p for p in posts if p["query"] != "comp=reboot"])
    counts = per_instance(emulator.accepted("reboot"))
    assert len(counts) == 12 and set(counts.values()) == {1}, "one reboot per instance"
    for deployment in DEPLOYMENTS.values():
        assert ready_order(emulator, deployment) == [0, 0, 1, 1, 2, 2]
    for key, figures in emulator.availability().items():
        assert figures["max_unavailable_upgrade_domains"] == 1, (key, figures)
    assert "batch 1/3, upgrade domain 0: rebooting WebRole1_IN_0, WorkerRole1_IN_0" in proc.output
    assert "rolling reboot complete" in proc.output and "12 rebooted, 0 failed" in proc.output
    assert "reimag" not in proc.output.split("TASK [azure_classic.cloud_services.rolling_reimage : Plan", 1)[1].replace(
        "rolling_reimage", "").replace("reimage_rollout", ""), "a rolling reboot speaks of reboots"
    stats = recap(proc.output)
    assert sorted(stats) == hosts_of(inv) and all(s["changed"] == 1 and not s["failed"] for s in stats.values())

    report = report_path_in(proc.output)  # beside the state file by default, named after it and the run
    assert report.parent == tmp_path and re.fullmatch(r"roll-\d{8}T\d{6}Z-[0-9a-f]{4}\.html", report.name)
    assert '"report_path": "%s"' % report in proc.output.replace("'", '"'), "published with set_stats"
    visible = report_of(report, [(d, "%s_IN_%d" % (r, k)) for d in DEPLOYMENTS.values()
                                 for r in ("WebRole1", "WorkerRole1") for k in range(3)])
    assert "Rolling reboot complete" in visible and "12 rebooted, 0 failed" in visible
    assert "most upgrade domains down at once1 (per deployment" in visible
    for lane in ("upgrade domain 0", "upgrade domain 1", "upgrade domain 2"):
        assert lane in visible

    # A reimage roll of the same instances is a roll of its own: the reboots do not count as reimages.
    two = inventory(tmp_path, instances=("WebRole1_IN_0", "WorkerRole1_IN_0"))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=two)
    assert proc.returncode == 0, proc.output
    assert len(emulator.accepted("reimage")) == 2 and "rolling reimage complete" in proc.output


def test_collection_playbook_rolling_rebuild_from_extra_var_and_report_of_a_failed_roll(emulator, tmp_path):
    emulator.fault(method="POST", path="contoso-web-prod/roleinstances/WebRole1_IN_1", action={
        "fail_operation": {"code": "InternalError", "message": "The local drives <sdb> could not be initialized."}})
    inv = inventory(tmp_path)
    report = tmp_path / "reports" / "rebuild.html"
    proc = subprocess.run([bin_path("ansible-playbook"), "-i", str(inv), "azure_classic.cloud_services.rolling_reimage",
                           "-e", "operation=rebuild", "-e", "rolling_reimage_state_path=%s" % (tmp_path / "roll.json"),
                           "-e", "rolling_reimage_report_path=%s" % report], env=emulator.env(), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    posts = role_operation_posts(emulator)
    assert posts and {p["query"] for p in posts} == {"comp=rebuild&resources=allLocalDrives"}, "only rebuilds"
    assert set(per_instance(emulator.accepted("rebuild")).values()) == {1}
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_upgrade_domains"] == 1
    assert "rolling rebuild failed" in output and "report: %s" % report in output
    visible = report_of(report, [("contoso-web-prod", "%s_IN_%d" % (r, k)) for r in ("WebRole1", "WorkerRole1")
                                 for k in range(3)])
    assert "Rolling rebuild failed" in visible
    assert "The local drives <sdb> could not be initialized." in visible, "the failure with its error, as text"
    assert "\u2715" in visible, "the failed bar is marked"
    assert "roll stopped" in visible
    state = json.loads((tmp_path / "roll.json").read_text())
    assert state["kind"] == "rebuild"


def test_operation_from_the_inventory_with_the_collection_playbook(emulator, tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local", "rolling_reimage_operation": "reboot",
                                                    "rolling_reimage_state_path": str(tmp_path / "roll.json")},
                                           "hosts": {"contoso-web.production.WebRole1_IN_%d" % k: {
                                               "cloud_service": "contoso-web", "deployment_slot": "production",
                                               "role_instance": "WebRole1_IN_%d" % k} for k in range(2)}}}))
    proc = subprocess.run([bin_path("ansible-playbook"), "-i", str(inv), "azure_classic.cloud_services.rolling_reimage"],
                          env=emulator.env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p["query"] for p in role_operation_posts(emulator)} == {"comp=reboot"}
    assert len(emulator.accepted("reboot")) == 2
    bad = subprocess.run([bin_path("ansible-playbook"), "-i", str(inv), "azure_classic.cloud_services.rolling_reimage",
                          "-e", "operation=restart"], env=emulator.env(), capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL, check=False)
    assert bad.returncode != 0 and "restart" in bad.stdout + bad.stderr
    assert len(role_operation_posts(emulator)) == 2, "a bad operation sends nothing"


def test_the_collection_playbook_fails_when_its_target_matches_no_host(emulator, tmp_path):
    """An inventory source that fails (here a wrong subscription id) is only a warning to ansible-playbook: the
    play would be skipped ("no hosts matched") and the run end with rc 0, a green run that did nothing."""
    source = tmp_path / "contoso.role_instances.yml"
    source.write_text("plugin: azure_classic.cloud_services.role_instances\n")
    wrong = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-4000-8000-0000000000ff"}

    def collection_playbook(inv, *extra, env=None):
        proc = subprocess.run([bin_path("ansible-playbook"), "-i", str(inv), "azure_classic.cloud_services.rolling_reimage",
                               "-e", "rolling_reimage_state_path=%s" % (tmp_path / "roll.json"), *extra],
                              env=emulator.env(**(env or {})), capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL, check=False)
        return proc.returncode, " ".join((proc.stdout + proc.stderr).split())

    rc, text = collection_playbook(source, env=wrong)
    assert rc != 0 and "the target 'all' matches no host of the inventory, so nothing would be rolled" in text, text
    assert "ANSIBLE_INVENTORY_UNPARSED_FAILED=true" in text
    rc, text = collection_playbook(inventory(tmp_path), "-e", "target=role_WebRole2")
    assert rc != 0 and "the target 'role_WebRole2' matches no host of the inventory" in text, text
    # What the docs tell cron and CI users: the failed source itself fails the run.
    rc, text = collection_playbook(source, env=dict(wrong, ANSIBLE_INVENTORY_UNPARSED_FAILED="true"))
    assert rc != 0 and "matches no host" not in text, text
    assert emulator.requests_made("POST") == []
    # A target that matches hosts runs as before.
    rc, text = collection_playbook(inventory(tmp_path, instances=("WebRole1_IN_0",)), "-e", "target=all")
    assert rc == 0 and len(emulator.accepted()) == 1, text

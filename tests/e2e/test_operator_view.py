"""What the operator sees (issue 27): a wait is never silent, the plan says what counts as done, a state file the
service does not back is not trusted. Real ansible-playbook runs against the emulator, judged from its event log and
from the output as it arrives."""
import json
import re
import shlex
import subprocess
import time

import pytest
import yaml

from tests.helpers import HealthEndpoint, bin_path, kill_tree, run_adhoc, run_playbook
from tests.e2e.test_rolling_role import inventory, play, reimaged, report_of, report_path_in

ALL = ["%s_IN_%d" % (role, k) for role in ("WebRole1", "WorkerRole1") for k in range(3)]


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
        if proc.poll() is None:
            kill_tree(proc.pid)  # its workers too: they run in sessions of their own
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


def test_the_plan_names_what_counts_as_done_and_how_to_start_a_new_roll(emulator, tmp_path):
    for name in ("WebRole1_IN_0", "WorkerRole1_IN_2"):
        rc, _result, output = run_adhoc(emulator, "role_instance_reimage", {
            "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": name})
        assert rc == 0, output
    adhoc = {e["path"].rsplit("/", 1)[-1]: e for e in emulator.accepted()}
    inv = inventory(tmp_path)
    plan = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv, extra=("--check",))
    assert plan.returncode == 0, plan.output
    assert "2 instance(s) count as already reimaged and are not sent again" in plan.output
    for name in adhoc:
        assert re.search(r"contoso-web/contoso-web-prod/%s: operation [0-9a-f]{32}, started \S+, not sent by this roll"
                         % name, plan.output), plan.output
    assert len(emulator.accepted()) == 2, "check mode sends nothing"
    # The exact variable the plan printed starts a new roll that counts none of them.
    since = re.search(r"-e rolling_reimage_since=(\S+)\)", plan.output).group(1)
    time.sleep(1)
    roll = run_playbook(emulator, play(tmp_path, rolling_reimage_since=since), tmp_path, inventory=inv)
    assert roll.returncode == 0, roll.output
    counts = {}
    for (_where, name), n in reimaged(emulator).items():  # by slot (the ad hoc tasks) or by name (the roll)
        counts[name] = counts.get(name, 0) + n
    assert counts == {n: 2 if n in adhoc else 1 for n in ALL}, counts
    assert "count as already" not in roll.output
    # The summary says how long its work counts as done, and how to roll again sooner.
    later = re.search(r"-e rolling_reimage_since=(\S+)", roll.output.split("rolling reimage complete")[1]).group(1)
    again = run_playbook(emulator, play(tmp_path, rolling_reimage_since=later), tmp_path, inventory=inv)
    assert again.returncode == 0 and len(emulator.accepted()) == 2 + 6 + 6, again.output


def test_a_rehearsal_against_a_fresh_emulator_rolls_again_despite_the_old_state(emulator, tmp_path):
    inv = inventory(tmp_path)
    first = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert first.returncode == 0, first.output
    emulator.reset()  # a new endpoint: its history holds nothing of the first rehearsal
    assert not emulator.accepted()
    again = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert again.returncode == 0, again.output
    assert set(reimaged(emulator).values()) == {1} and len(reimaged(emulator)) == 6, again.output
    assert again.output.count("but the service knows no such operation") == 6
    assert "that record is not this service's, so it is reimaged again" in again.output


def test_a_roll_on_a_missing_cloud_service_or_deployment_says_which(emulator, tmp_path):
    inv = tmp_path / "missing.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "hosts": {
        "gone": {"cloud_service": "no-such-service", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"},
        "no-deployment": {"cloud_service": "contoso-web", "deployment_name": "no-such-deployment",
                          "role_instance": "WebRole1_IN_0"},
    }}}))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert proc.returncode != 0
    text = "".join(proc.output.split())  # ansible-core 2.16 wraps error messages, also after a hyphen
    assert "".join("cloud service no-such-service does not exist in subscription".split()) in text, proc.output
    assert "".join("deployment no-such-deployment of cloud service contoso-web does not exist (the cloud service "
                   "does)".split()) in text, proc.output
    assert not emulator.requests_made(method="POST")


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_health_url_failing_before_the_roll_sends_nothing(emulator, tmp_path, check_mode):
    endpoint = HealthEndpoint(emulator)
    try:
        endpoint.answers["/"] = 500
        proc = run_playbook(emulator, play(tmp_path, rolling_reimage_health_url=endpoint.url + "/",
                                           rolling_reimage_health_timeout=3, rolling_reimage_health_validate_certs=False),
                            tmp_path, inventory=inventory(tmp_path), extra=("--check",) if check_mode else ())
    finally:
        endpoint.close()
    assert proc.returncode != 0, proc.output
    text = " ".join(proc.output.split())  # ansible-core 2.16 wraps error messages
    assert "the health gate fails before the roll began, so no upgrade domain is taken down" in text, proc.output
    assert "answered 500" in text and "/" in endpoint.paths
    assert not emulator.requests_made(method="POST")


def test_an_unresolvable_health_url_fails_check_mode_too(emulator, tmp_path):
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_health_url="https://health.invalid/",
                                       rolling_reimage_health_timeout=2), tmp_path, inventory=inventory(tmp_path),
                        extra=("--check",))
    assert proc.returncode != 0 and "health.invalid/ failed" in " ".join(proc.output.split()), proc.output
    assert not emulator.requests_made(method="POST")


def _instance_health_play(tmp_path, endpoint, **extra):
    return play(tmp_path, rolling_reimage_instance_health_url=endpoint.url + "/{{ role_instance }}",
                rolling_reimage_health_validate_certs=False, **extra)


def test_each_instances_own_health_url_is_checked_before_the_roll_and_once_its_batch_is_ready(emulator, tmp_path):
    endpoint = HealthEndpoint(emulator)
    try:
        for name in ALL:
            endpoint.answers["/" + name] = 200
        proc = run_playbook(emulator, _instance_health_play(tmp_path, endpoint), tmp_path, inventory=inventory(tmp_path))
    finally:
        endpoint.close()
    assert proc.returncode == 0, proc.output
    ready = {}
    for event in emulator.events("instance_status"):
        if event["status"] == "ReadyRole" and event["deployment"] == "contoso-web-prod":
            ready[event["instance"]] = event["time"]
    first_send = min(e["time"] for e in emulator.accepted())
    for name in ALL:
        asked = [at for at, path in endpoint.asked if path == "/" + name]
        assert len(asked) == 2, (name, endpoint.asked)
        assert asked[0] < first_send, "checked before anything was sent"
        assert asked[1] >= ready[name], "checked once its instance was ReadyRole again"
    assert "host contoso-web.production.WebRole1_IN_0: health gate: %s/WebRole1_IN_0 answered 200" % endpoint.url \
        in proc.output
    # The report marks every check on the timeline, splits each bar into operation and recovery, and weighs the
    # makespan against the lower bound.
    page = report_path_in(proc.output).read_text()
    assert page.count('class="check-ok"') == 2 * 12 and 'class="check-failed"' not in page.split("</style>")[1]
    assert page.count('class="bar-recovery"') == 6
    visible = report_of(report_path_in(proc.output), [("contoso-web-prod", n) for n in ALL])
    assert re.search(r"makespan / lower bound = \d\.\d\d", visible), visible


def test_an_instances_own_health_url_failing_after_its_batch_stops_the_roll(emulator, tmp_path):
    endpoint = HealthEndpoint(emulator)
    try:
        for name in ALL:
            endpoint.answers["/" + name] = 200
        endpoint.answers["/WebRole1_IN_1"] = [200, 503]  # healthy before the roll, not after its reimage
        proc = run_playbook(emulator, _instance_health_play(tmp_path, endpoint, rolling_reimage_health_timeout=3),
                            tmp_path, inventory=inventory(tmp_path))
    finally:
        endpoint.close()
    assert proc.returncode != 0, proc.output
    sent = {e["path"].rsplit("/", 1)[-1] for e in emulator.accepted()}
    assert sent == {"WebRole1_IN_0", "WorkerRole1_IN_0", "WebRole1_IN_1", "WorkerRole1_IN_1"}, "upgrade domain 2 never"
    assert re.search(r"fatal: \[contoso-web.production.WebRole1_IN_1\]: FAILED!.*stopped after its batch: host "
                     r"contoso-web.production.WebRole1_IN_1: health gate: \S+/WebRole1_IN_1 answered 503", proc.output)


def test_each_run_has_its_own_record_and_elapsed_time_and_an_index_lists_them(emulator, tmp_path):
    inv = inventory(tmp_path, instances=("WebRole1_IN_0", "WorkerRole1_IN_1"))
    first = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert first.returncode == 0, first.output
    time.sleep(2)
    started = time.monotonic()
    second = run_playbook(emulator, play(tmp_path, rolling_reimage_fresh=True), tmp_path, inventory=inv,
                          env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    wall = time.monotonic() - started
    assert second.returncode == 0, second.output
    assert len(emulator.accepted()) == 4, "a fresh roll of the same instances"
    # The second run's times are its own, not the roll's first run's.
    elapsed = [float(x) for x in re.findall(r"roll elapsed ([\d.]+)s", second.output)]
    total = float(re.search(r"rolling reimage complete in ([\d.]+)s", second.output).group(1))
    assert elapsed and max(elapsed + [total]) <= wall, (elapsed, total, wall)
    reports = [report_path_in(run.output) for run in (first, second)]
    assert reports[0] != reports[1] and all(r.exists() and r.parent == tmp_path for r in reports), reports
    summaries = [json.loads(r.with_name(r.name[:-len(".html")] + ".summary.json").read_text()) for r in reports]
    assert summaries[0]["run_id"] != summaries[1]["run_id"] and summaries[0]["roll_id"] == summaries[1]["roll_id"]
    assert summaries[1]["elapsed"] <= wall and summaries[1]["run"]["operation"] == "reimage"
    assert summaries[1]["run"]["fresh"] is True and summaries[1]["run"]["user"] and summaries[1]["run"]["controller"]
    assert re.search(r'"elapsed": "?%s"?' % re.escape(str(summaries[1]["elapsed"])), second.output.replace("'", '"')), \
        "set_stats says the same"
    index = (tmp_path / "index.html").read_text()
    assert index.index(reports[1].name) < index.index(reports[0].name), "newest first"
    visible = report_of(reports[1], [("contoso-web-prod", "WebRole1_IN_0"), ("contoso-web-prod", "WorkerRole1_IN_1")])
    assert summaries[1]["run_id"] in visible and "fresh" in visible


def test_a_stopped_run_says_exactly_how_to_continue_and_that_command_finishes_it(emulator, tmp_path):
    emulator.fault(method="POST", path="WebRole1_IN_1", action={"fail_operation": {"code": "InternalError",
                                                                                   "message": "boom"}}, times=1)
    inv = inventory(tmp_path)
    first = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert first.returncode != 0
    command = re.search(r"^to continue this roll: (.*) \(with this run's own -e variables added before these: the "
                        r"later ones win\)$", first.output,
                        re.M).group(1)
    assert "ansible-playbook" in command and "-e rolling_reimage_since=20" in command, command
    assert "to continue" in report_of(report_path_in(first.output), [("contoso-web-prod", "WebRole1_IN_1")])
    args = shlex.split(command)
    proc = subprocess.run([bin_path(args[0])] + args[1:], env=emulator.env(), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, check=False, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {}
    for (_where, name), n in reimaged(emulator).items():
        counts[name] = counts.get(name, 0) + n
    assert counts == {name: 2 if name == "WebRole1_IN_1" else 1 for name in ALL}, "its failed reimage, then one"


def test_secrets_on_the_command_line_reach_no_record(emulator, tmp_path):
    """The command to continue is rebuilt from safe options only: extra variables, however spelled (-ve, --extra,
    --ext=), never reach the output, the state file, the report, the summary or set_stats."""
    emulator.fault(method="POST", path="WebRole1_IN_1", action={"fail_operation": {"code": "InternalError",
                                                                                   "message": "boom"}}, times=1)
    secret = "hunter2-" + "s3cr3t"
    playbook = tmp_path / "play.yml"
    playbook.write_text(play(tmp_path))
    proc = subprocess.run([bin_path("ansible-playbook"), str(playbook), "-i", str(inventory(tmp_path)), "-ve",
                           json.dumps({"unused_password": secret}), "--extra", "other_pw=" + secret,
                           "--ext=third_pw=" + secret], env=emulator.env(ANSIBLE_SHOW_CUSTOM_STATS="1"),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "to continue this roll: ansible-playbook -i " in output, output
    written = [p for p in tmp_path.iterdir() if p.is_file() and p.suffix in (".json", ".html")]
    assert len(written) >= 4, written  # the state, the report, the summary, the index
    for text in [output] + [p.read_text() for p in written]:
        assert secret not in text


def test_a_fresh_roll_that_stopped_continues_as_itself_with_the_printed_command(emulator, tmp_path):
    inv = inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1", "WebRole1_IN_2"))
    first = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inv)
    assert first.returncode == 0, first.output
    time.sleep(1)
    emulator.fault(method="POST", path="WebRole1_IN_0", action={"fail_operation": {"code": "InternalError",
                                                                                   "message": "boom"}}, times=1)
    fresh = run_playbook(emulator, play(tmp_path, rolling_reimage_fresh=True), tmp_path, inventory=inv)
    assert fresh.returncode != 0
    command = re.search(r"^to continue this roll: (.*) \(with this run's own", fresh.output, re.M).group(1)
    assert command.endswith("-e rolling_reimage_fresh=false"), command
    args = shlex.split(command)
    # The run's own -e variables go first (here: none were given; fresh came from the play), then the printed ones.
    proc = subprocess.run([bin_path(args[0])] + args[1:], env=emulator.env(), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, check=False, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {}
    for (_where, name), n in reimaged(emulator).items():
        counts[name] = counts.get(name, 0) + n
    # Roll 1 once each; the fresh roll: IN_0's failed reimage and its second, then IN_1 and IN_2 once each.
    assert counts == {"WebRole1_IN_0": 3, "WebRole1_IN_1": 2, "WebRole1_IN_2": 2}, (counts, proc.stdout)

"""Benchmark: waiting for operations of 5 s, 60 s and 600 s, ours against a uri + until loop.

    .venv/bin/python bench/waiting.py [--scale 0.1]

Operations are scaled by --scale with the emulator's timing (0.1: 0.5 s, 6 s, 60 s) so the run stays short;
the fixed-delay loop is scaled the same way (10 s x scale). For each operation it reports the status
requests made (Get Operation Status calls in the emulator's log) and how late the end was noticed (the first
poll after the operation ended, minus its end). The module's own schedule (every max(0.5 s, 10 % of the
time waited)) does not scale, so the table also gives the unscaled figures of both schedules, computed.
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys

from harness import start_emulator, bin_path

DURATIONS = (5, 60, 600)


def polls_and_delay(emu, op_seconds):
    events = emu.events("request")
    post = [e for e in events if e["method"] == "POST" and e["status"] == 202][-1]
    end = post["time"] + op_seconds
    polls = [e for e in events if e["method"] == "GET" and post["request_id"] in e["path"]]
    after = [e["time"] for e in polls if e["time"] >= end]
    return len(polls), (min(after) - end) if after else float("nan")


def schedule_ours(duration):
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import next_interval
    t, n = 0.0, 0
    while t < duration:
        t += next_interval(t)
        n += 1
    return n, t - duration


def schedule_fixed(duration, delay=10.0):
    """An until loop polls right away, then every delay; the first poll after the end notices it."""
    polls_before_end = math.floor(duration / delay) + 1
    return polls_before_end + 1, polls_before_end * delay - duration


def run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                          timeout=3600)
    if proc.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd[:4]), proc.stdout[-2000:] + proc.stderr[-2000:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    args = parser.parse_args()
    emu, work = start_emulator("waiting", 1.0, 0.0)
    env = emu.env()
    info = emu.info
    rows = []
    try:
        for duration in DURATIONS:
            op = duration * args.scale
            emu.reset()
            emu.timing(operation_seconds=op, recovery_seconds=0)
            run([bin_path("ansible"), "localhost", "-m", "azure_classic.cloud_services.role_instance_reimage", "-a",
                 "cloud_service=contoso-web deployment_slot=production role_instance=WebRole1_IN_0 wait_timeout=%d"
                 % (duration * 2)], env)
            ours = polls_and_delay(emu, op)
            emu.reset()
            base = "%s/%s" % (info["management_url"], info["subscription_id"])
            playbook = work / "uri.yml"
            playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
                {"name": "Reimage", "ansible.builtin.uri": {
                    "url": base + "/services/hostedservices/contoso-web/deploymentslots/production/roleinstances/"
                                  "WebRole1_IN_0?comp=reimage", "method": "POST", "status_code": 202,
                    "client_cert": info["certificate_path"], "ca_path": info["ca_path"],
                    "headers": {"x-ms-version": "2014-10-01", "Content-Length": "0"}}, "register": "post"},
                {"name": "Wait", "ansible.builtin.uri": {
                    "url": base + "/operations/{{ post.x_ms_request_id }}", "return_content": True,
                    "client_cert": info["certificate_path"], "ca_path": info["ca_path"],
                    "headers": {"x-ms-version": "2014-10-01"}}, "register": "status",
                 "until": "'<Status>InProgress</Status>' not in status.content", "retries": 10000,
                 "delay": max(1, round(10 * args.scale))}]}]))
            run([bin_path("ansible-playbook"), str(playbook)], env)
            theirs = polls_and_delay(emu, op)
            rows.append((duration, op, ours, theirs, schedule_ours(duration), schedule_fixed(duration)))
    finally:
        emu.server.stop()
    print("## Waiting for an operation (bench/waiting.py)\n")
    print("Machine: %s, %d cores, Python %s. Measured with operations scaled by %.2f (the `uri` loop's delay %d s); "
          "unscaled figures computed from the two schedules.\n" % (platform.machine(), os.cpu_count(),
                                                                   platform.python_version(), args.scale,
                                                                   max(1, round(10 * args.scale))))
    print("| operation | measured at (s) | ours: status requests | ours: noticed after (s) | uri+until: status "
          "requests | uri+until: noticed after (s) | unscaled ours: requests / late (s) | unscaled 10 s loop: "
          "requests / late (s) | goal: late at most (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for duration, op, ours, theirs, full_ours, full_fixed in rows:
        print("| %d s | %.1f | %d | %.2f | %d | %.2f | %d / %.1f | %d / %.1f | %.1f |" % (
            duration, op, ours[0], ours[1], theirs[0], theirs[1], full_ours[0], full_ours[1], full_fixed[0],
            full_fixed[1], max(0.5, 0.1 * duration)))


if __name__ == "__main__":
    main()

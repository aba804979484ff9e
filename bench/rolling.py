"""Benchmark: the rolling_reimage role's makespan against the lower bound and the naive way.

    .venv/bin/python bench/rolling.py [--operation-seconds 5] [--recovery-seconds 10]

Runs an emulator with 2 cloud services, each with one deployment of 2 roles x 3 instances in 3 upgrade
domains, then, in the same run:
  1. the role over all 12 instances (both deployments roll at once, one upgrade domain at a time);
  2. the naive way: role_instance_reimage with wait_for_ready, one instance at a time, one deployment after
     the other (what users do by hand).
Makespans are read from the emulator's events (first accepted POST to last ReadyRole). The lower bound is,
for each deployment, the sum over its upgrade domains of instances-in-UD x operation-seconds +
recovery-seconds, the largest over deployments. Prints the figures and ratios as a Markdown table.
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

from harness import start_emulator

TOPOLOGY_ROLES = [{"name": "WebRole1", "instances": 3}, {"name": "WorkerRole1", "instances": 3}]


def topology(subscription):
    services = []
    for n in (1, 2):
        deployment = {"name": "bench-%d-prod" % n, "slot": "production", "upgrade_domain_count": 3,
                      "roles": TOPOLOGY_ROLES}
        services.append({"name": "bench-%d" % n, "deployments": [deployment]})
    return {"subscription_id": subscription, "cloud_services": services}


def makespan(emu):
    events = emu.events()
    posts = [e["time"] for e in events if e["kind"] == "request" and e["method"] == "POST" and e["status"] == 202]
    ready = [e["time"] for e in events if e["kind"] == "instance_status" and e["status"] == "ReadyRole"]
    return max(ready) - min(posts), len(posts)


def lower_bound(op, rec):
    per_ud = {}
    for role in TOPOLOGY_ROLES:
        for k in range(role["instances"]):
            per_ud[k % 3] = per_ud.get(k % 3, 0) + 1
    return sum(n * op + rec for n in per_ud.values())


def inventory(path):
    hosts = {}
    for n in (1, 2):
        for role in TOPOLOGY_ROLES:
            for k in range(role["instances"]):
                name = "%s_IN_%d" % (role["name"], k)
                hosts["bench-%d.production.%s" % (n, name)] = {
                    "cloud_service": "bench-%d" % n, "deployment_slot": "production", "role_instance": name}
    path.write_text(json.dumps({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}))
    return hosts


def run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode:
        sys.exit("command failed: %s\n%s%s" % (" ".join(cmd), proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operation-seconds", type=float, default=5.0)
    parser.add_argument("--recovery-seconds", type=float, default=10.0)
    args = parser.parse_args()
    op, rec = args.operation_seconds, args.recovery_seconds

    emu, work = start_emulator("rolling", op, rec)
    emu.topology(topology(emu.subscription_id))
    emu.timing(operation_seconds=op, recovery_seconds=rec)
    env = emu.env()
    bindir = pathlib.Path(sys.executable).parent
    hosts = inventory(work / "inventory.json")
    try:
        emu.reset()
        started = time.monotonic()
        run([str(bindir / "ansible-playbook"), "-i", str(work / "inventory.json"),
             "azure_classic.cloud_services.rolling_reimage", "-e", "rolling_reimage_state_path=%s" % (work / "roll.json")],
            env)
        role_wall = time.monotonic() - started
        role_span, role_posts = makespan(emu)
        availability = emu.availability()

        emu.reset()
        started = time.monotonic()
        for host, hv in hosts.items():
            run([str(bindir / "ansible"), "localhost", "-m", "azure_classic.cloud_services.role_instance_reimage",
                 "-a", json.dumps({"cloud_service": hv["cloud_service"], "deployment_slot": "production",
                                   "role_instance": hv["role_instance"], "wait_for_ready": True})], env)
        naive_wall = time.monotonic() - started
        naive_span, naive_posts = makespan(emu)
    finally:
        emu.server.stop()

    bound = lower_bound(op, rec)
    worst_ud = max(a["max_unavailable_upgrade_domains"] for a in availability.values())
    print("## Rolling reimage makespan (bench/rolling.py)\n")
    print("Machine: %s, %d cores, Python %s; emulator operation-seconds %.1f, recovery-seconds %.1f; "
          "2 deployments x 2 roles x 3 instances, 3 upgrade domains.\n" % (
              platform.machine(), os.cpu_count(), platform.python_version(), op, rec))
    print("| way | makespan (s) | lower bound (s) | ratio to bound | reimages | wall time incl. ansible start (s) |")
    print("|---|---|---|---|---|---|")
    row = (role_span, bound, role_span / bound, role_posts, role_wall)
    print("| rolling_reimage role | %.1f | %.1f | **%.3f** | %d | %.1f |" % row)
    print("| naive: one instance at a time, wait for ReadyRole | %.1f | %.1f | %.3f | %d | %.1f |" % (
        naive_span, bound, naive_span / bound, naive_posts, naive_wall))
    print("\nRole vs naive: %.2fx faster. Most upgrade domains down at once in any deployment during the roll: %d." % (
        naive_span / role_span, worst_ud))


if __name__ == "__main__":
    main()

"""Benchmark: the rolling_reimage role at fleet scale, with the role's defaults.

    .venv/bin/python bench/fleet.py [--fleets 2x6,20x10,50x20] [--operation-seconds 5] [--recovery-seconds 10]

For each fleet (deployments x instances per deployment; production deployments of 2 roles in 5 upgrade domains)
an emulator runs in its own process, the role rolls every instance of a static inventory with its defaults, and
the emulator's event log gives the makespan (first accepted reimage to last ReadyRole), the API requests per
reimaged instance and the peak requests in any one second. The controller's CPU (user + system of the whole
ansible-playbook process tree) and peak RSS (the largest process of that tree) come from the operating system.
The lower bound is, per deployment, the sum over its upgrade domains of instances x operation-seconds +
recovery-seconds (the lock lets one operation run at a time), the largest over deployments; the ratio is what a
roll costs beyond it. Every fleet is checked: one reimage per instance, at most one upgrade domain of a
deployment down at once.
"""
import argparse
import collections
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import EmulatorHandle, ensure_collection_path  # noqa: E402

UPGRADE_DOMAINS = 5
ROLES = ("WebRole1", "WorkerRole1")
# Runs ansible-playbook as its only child, so RUSAGE_CHILDREN is exactly that process tree.
MEASURE = r"""
import json, resource, subprocess, sys
rc = subprocess.call(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}))
"""


def topology(subscription, deployments, per_deployment):
    per_role = per_deployment // len(ROLES)
    return {"subscription_id": subscription, "cloud_services": [
        {"name": "fleet-%03d" % n, "deployments": [{
            "name": "fleet-%03d-prod" % n, "slot": "production", "upgrade_domain_count": UPGRADE_DOMAINS,
            "roles": [{"name": role, "instances": per_role} for role in ROLES]}]}
        for n in range(deployments)]}


def lower_bound(per_deployment, op, rec):
    per_role = per_deployment // len(ROLES)
    per_ud = collections.Counter(k % UPGRADE_DOMAINS for _role in ROLES for k in range(per_role))
    return sum(n * op + rec for n in per_ud.values())


def start_emulator(work, spec, op, rec):
    topo = work / "topology.json"
    topo.write_text(json.dumps(spec))
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--workdir", str(work / "emulator"),
                             "--topology", str(topo), "--operation-seconds", str(op), "--recovery-seconds", str(rec)],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()
    if "emulator listening" not in line:
        proc.kill()
        sys.exit("the emulator did not start: %s%s" % (line, proc.stdout.read()))
    info = json.loads((work / "emulator" / "connection.json").read_text())
    return proc, EmulatorHandle(info)


def inventory(path, spec):
    hosts = {}
    for service in spec["cloud_services"]:
        for role in service["deployments"][0]["roles"]:
            for k in range(role["instances"]):
                name = "%s_IN_%d" % (role["name"], k)
                hosts["%s.production.%s" % (service["name"], name)] = {
                    "cloud_service": service["name"], "deployment_slot": "production", "role_instance": name}
    path.write_text(json.dumps({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}))
    return len(hosts)


def measure(emu, instances, op, rec, per_deployment):
    events = emu.events()
    requests = [e for e in events if e["kind"] == "request"]
    accepted = [e for e in requests if e["method"] == "POST" and e["status"] == 202]
    ready = [e["time"] for e in events if e["kind"] == "instance_status" and e["status"] == "ReadyRole"]
    per_instance = collections.Counter(e["path"] for e in accepted)
    if len(per_instance) != instances or set(per_instance.values()) != {1}:
        sys.exit("not one reimage per instance: %d instances, counts %s" % (
            len(per_instance), sorted(set(per_instance.values()))))
    worst = max(a["max_unavailable_upgrade_domains"] for a in emu.availability().values())
    if worst > 1:
        sys.exit("availability bound broken: %d upgrade domains down at once" % worst)
    start = min(e["time"] for e in accepted)
    per_second = collections.Counter(int(e["time"] - start) for e in requests if e["time"] >= start)
    span = max(ready) - start
    bound = lower_bound(per_deployment, op, rec)
    in_roll = [e for e in requests if e["time"] >= start - 1]
    return {"makespan": span, "bound": bound, "ratio": span / bound, "requests_per_instance": len(in_roll) / instances,
            "peak_rps": max(per_second.values()), "worst_ud": worst}


def run_fleet(deployments, per_deployment, op, rec, extra_vars):
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    spec = topology("3f2b3c1e-0000-4000-8000-%012d" % deployments, deployments, per_deployment)
    proc, emu = start_emulator(work, spec, op, rec)
    try:
        instances = inventory(work / "inventory.json", spec)
        env = emu.env(HOME=str(work / "home"), ANSIBLE_HOME=str(work / "home" / ".ansible"))
        cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", str(work / "inventory.json"),
               "azure_classic.cloud_services.rolling_reimage",
               "-e", json.dumps(dict({"rolling_reimage_state_path": str(work / "roll.json")}, **extra_vars))]
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True, text=True,
                             check=False)
        wall = time.monotonic() - started
        usage = json.loads(out.stdout.strip().splitlines()[-1])
        if usage["rc"]:
            sys.exit("the roll of %dx%d failed (rc %d); rerun it by hand in %s" % (
                deployments, per_deployment, usage["rc"], work))
        figures = measure(emu, instances, op, rec, per_deployment)
        figures.update(instances=instances, cpu_per_instance=usage["cpu"] / instances,
                       peak_rss_mib=usage["maxrss_kib"] / 1024.0, wall=wall)
        return figures
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleets", default="2x6,20x10,50x20", help="deployments x instances per deployment, ...")
    parser.add_argument("--operation-seconds", type=float, default=5.0)
    parser.add_argument("--recovery-seconds", type=float, default=10.0)
    parser.add_argument("-e", "--extra-vars", default="{}", help="role variables as JSON (default: the defaults)")
    args = parser.parse_args()
    ensure_collection_path()
    fleets = [tuple(int(x) for x in f.split("x")) for f in args.fleets.split(",")]
    rows = []
    for deployments, per_deployment in fleets:
        figures = run_fleet(deployments, per_deployment, args.operation_seconds, args.recovery_seconds,
                            json.loads(args.extra_vars))
        rows.append(((deployments, per_deployment), figures))
        print("fleet %dx%d done" % (deployments, per_deployment), file=sys.stderr, flush=True)
    base = rows[0][1]
    print("## Rolling reimage at fleet scale (bench/fleet.py)\n")
    print("Machine: %s, %d cores, Python %s; emulator in its own process, operation-seconds %.1f, recovery-seconds "
          "%.1f; production deployments of 2 roles in 5 upgrade domains; role defaults%s.\n" % (
              platform.machine(), os.cpu_count(), platform.python_version(), args.operation_seconds,
              args.recovery_seconds, "" if args.extra_vars == "{}" else " with " + args.extra_vars))
    print("| fleet | instances | makespan (s) | lower bound (s) | ratio to bound | API requests per instance "
          "| peak requests/s | controller CPU per instance (s) | peak controller RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (deployments, per_deployment), f in rows:
        print("| %d x %d | %d | %.1f | %.1f | **%.3f** | %.1f (%.2fx) | %d | %.3f (%.2fx) | %.0f |" % (
            deployments, per_deployment, f["instances"], f["makespan"], f["bound"], f["ratio"],
            f["requests_per_instance"], f["requests_per_instance"] / base["requests_per_instance"], f["peak_rps"],
            f["cpu_per_instance"], f["cpu_per_instance"] / base["cpu_per_instance"], f["peak_rss_mib"]))
    print("\nRatios in brackets are against the first fleet of this run. Every fleet: one reimage per instance, at "
          "most %d upgrade domain of a deployment down at once (emulator's availability report)." % max(
              f["worst_ud"] for _k, f in rows))


if __name__ == "__main__":
    main()

"""Benchmark: per-task overhead of role_instance_reimage (wait=false) against ansible.builtin.uri.

    .venv/bin/python bench/overhead.py [--runs 15]

Alternates, run by run, an ad hoc `ansible localhost -m azure_classic.cloud_services.role_instance_reimage -a
'... wait=false'` and an ad hoc `ansible localhost -m ansible.builtin.uri` making the same POST with the same
client certificate, against the emulator (operations of 0.2 s, so each run finds the deployment unlocked), and
`ansible.builtin.ping` for what Ansible itself costs. Prints the medians of wall time and of CPU time (the whole
process tree) and the ratio ours/uri, end to end and net of the ping; then what each module's HTTP stack costs
to import (CPU in a fresh interpreter that has already loaded ansible.module_utils.basic).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from harness import start_emulator, bin_path
from tests.helpers import ensure_collection_path  # harness put the checkout on the import path

# What each module imports on top of ansible.module_utils.basic to make its request.
IMPORTS = (
    ("ours: the client (requests, urllib3)",
     "from ansible_collections.azure_classic.cloud_services.plugins.module_utils import "
     "_module_base, _role_instance_operations, _client"),
    ("uri: ansible.module_utils.urls", "import ansible.module_utils.urls"),
)
IMPORT_PROBE = ("import time\nimport ansible.module_utils.basic\nstarted = time.process_time()\n%s\n"
                "print(time.process_time() - started)")


def timed(cmd, env):
    """(wall seconds, CPU seconds of the process tree) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), proc.stdout[-2000:] + proc.stderr[-2000:]))
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def import_costs(runs):
    """Median CPU seconds of each entry of IMPORTS, alternated run by run in fresh interpreters."""
    env = dict(os.environ, PYTHONPATH=str(ensure_collection_path()))
    costs = {label: [] for label, _statement in IMPORTS}
    for _run in range(runs):
        for label, statement in IMPORTS:
            proc = subprocess.run([sys.executable, "-c", IMPORT_PROBE % statement], env=env, capture_output=True,
                                  text=True, check=True)
            costs[label].append(float(proc.stdout))
    return {label: statistics.median(values) for label, values in costs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    emu, work = start_emulator("overhead", 0.2, 0.0)
    env = emu.env()
    info = emu.info
    instance = "WebRole1_IN_0"
    ours = [bin_path("ansible"), "localhost", "-m", "azure_classic.cloud_services.role_instance_reimage", "-a",
            "cloud_service=contoso-web deployment_slot=production role_instance=%s wait=false" % instance]
    url = "%s/%s/services/hostedservices/contoso-web/deploymentslots/production/roleinstances/%s?comp=reimage" % (
        info["management_url"], info["subscription_id"], instance)
    uri = [bin_path("ansible"), "localhost", "-m", "ansible.builtin.uri", "-a", json.dumps({
        "url": url, "method": "POST", "status_code": 202, "client_cert": info["certificate_path"],
        "ca_path": info["ca_path"], "headers": {"x-ms-version": "2014-10-01", "Content-Length": "0"}})]
    ping = [bin_path("ansible"), "localhost", "-m", "ansible.builtin.ping"]
    commands = (("ours", ours), ("uri", uri), ("ping", ping))
    wall = {name: [] for name, _cmd in commands}
    cpu = {name: [] for name, _cmd in commands}
    try:
        for run_number in range(args.runs):  # pylint: disable=unused-variable
            for name, cmd in commands:
                time.sleep(0.3)  # let the previous operation release the deployment's lock
                elapsed, used = timed(cmd, env)
                wall[name].append(elapsed)
                cpu[name].append(used)
    finally:
        emu.server.stop()
    med = {name: statistics.median(values) for name, values in wall.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    # Runs are paired (same moment, same machine load), so the median of per-pair ratios resists drift.
    paired = statistics.median(o / u for o, u in zip(wall["ours"], wall["uri"]))
    print("## Per-task overhead (bench/overhead.py)\n")
    print("Machine: %s, %d cores, Python %s; %d alternated runs of each, ad hoc `ansible localhost`, end to end; "
          "CPU is user + system time of the whole process tree.\n" % (
              platform.machine(), os.cpu_count(), platform.python_version(), args.runs))
    print("| task | median wall (s) | median CPU (s) | wall ratio to uri | CPU ratio to uri |")
    print("|---|---|---|---|---|")
    print("| `ansible.builtin.uri` POST with the client certificate (baseline) | %.3f | %.3f | 1.00 | 1.00 |" % (
        med["uri"], med_cpu["uri"]))
    print("| `role_instance_reimage wait=false` | %.3f | %.3f | **%.2f** (paired runs: %.2f) | %.2f |" % (
        med["ours"], med_cpu["ours"], med["ours"] / med["uri"], paired, med_cpu["ours"] / med_cpu["uri"]))
    print("| `ansible.builtin.ping` (what Ansible costs by itself) | %.3f | %.3f | | |" % (med["ping"], med_cpu["ping"]))
    net_ours, net_uri = med_cpu["ours"] - med_cpu["ping"], med_cpu["uri"] - med_cpu["ping"]
    print("\nNet of Ansible's own cost (CPU beyond `ping`): ours %.0f ms, uri %.0f ms%s." % (
        net_ours * 1000, net_uri * 1000, (", ratio %.2f" % (net_ours / net_uri)) if net_uri > 0 else ""))
    print("\nImport cost of the HTTP stack, CPU after `ansible.module_utils.basic`, median of %d fresh "
          "interpreters:\n" % args.runs)
    print("| imports | CPU (ms) |")
    print("|---|---|")
    for label, seconds in import_costs(args.runs).items():
        print("| %s | %.0f |" % (label, seconds * 1000))


if __name__ == "__main__":
    main()

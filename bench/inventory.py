"""Benchmark: the role_instances inventory plugin on 50 cloud services x 100 instances (5,000 hosts).

    .venv/bin/python bench/inventory.py [--runs 3]

Times `ansible-inventory --list` end to end (process start to exit) for: the plugin reading the emulator,
the plugin answering from its cache, and, as the baseline, an equivalent static YAML inventory with the
same hosts, variables and groups. Prints medians and ratios as a Markdown table.
"""
import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import yaml

from harness import start_emulator

SERVICES, ROLES, PER_ROLE, UDS = 50, ("WebRole1", "WorkerRole1"), 50, 5


def topology(subscription):
    services = []
    for n in range(SERVICES):
        roles = [{"name": r, "instances": PER_ROLE} for r in ROLES]
        services.append({"name": "svc%02d" % n, "deployments": [
            {"name": "svc%02d-prod" % n, "slot": "production", "upgrade_domain_count": UDS, "roles": roles}]})
    return {"subscription_id": subscription, "cloud_services": services}


def static_inventory(path):
    groups = {}
    hosts = {}
    for n in range(SERVICES):
        for role in ROLES:
            for k in range(PER_ROLE):
                name = "svc%02d.production.%s_IN_%d" % (n, role, k)
                hosts[name] = {"cloud_service": "svc%02d" % n, "deployment_name": "svc%02d-prod" % n,
                               "deployment_slot": "production", "role_name": role, "role_instance": "%s_IN_%d" % (role, k),
                               "upgrade_domain": k % UDS, "fault_domain": k % 2, "instance_status": "ReadyRole",
                               "power_state": "Started", "instance_size": "Small", "ip_address": "10.0.0.1"}
                for group in ("cloud_service_svc%02d" % n, "slot_production", "role_" + role,
                              "upgrade_domain_%d" % (k % UDS)):
                    groups.setdefault(group, {"hosts": {}})["hosts"][name] = None
    groups["cloud_service_svc00"]["hosts"].update({h: None for h in hosts})  # every host defined once, here
    for group in groups.values():
        group["hosts"] = {h: None for h in group["hosts"]}
    first = groups["cloud_service_svc00"]["hosts"]
    for name, hostvars in hosts.items():
        first[name] = hostvars
    path.write_text(yaml.safe_dump({"all": {"children": groups}}, default_flow_style=False))


def timed(cmd, env):
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode or proc.stdout.count("_IN_") < SERVICES * PER_ROLE * len(ROLES):
        sys.exit("ansible-inventory failed:\n%s" % proc.stderr[-3000:])
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    emu, work = start_emulator("inventory")
    emu.topology(topology(emu.subscription_id))
    env = emu.env()
    inventory = str(pathlib.Path(sys.executable).parent / "ansible-inventory")
    plugin_cfg = work / "bench.role_instances.yml"
    plugin_cfg.write_text(yaml.safe_dump({"plugin": "azure_classic.cloud_services.role_instances", "cache": True,
                                          "cache_plugin": "ansible.builtin.jsonfile",
                                          "cache_connection": str(work / "cache"), "cache_timeout": 3600}))
    static = work / "static.yml"
    static_inventory(static)
    figures = {"static": [], "plugin": [], "cached": []}
    try:
        for run_number in range(args.runs):  # pylint: disable=unused-variable
            figures["static"].append(timed([inventory, "-i", str(static), "--list"], env))
            figures["plugin"].append(timed([inventory, "-i", str(plugin_cfg), "--list", "--flush-cache"], env))
            figures["cached"].append(timed([inventory, "-i", str(plugin_cfg), "--list"], env))
    finally:
        emu.server.stop()
    med = {k: statistics.median(v) for k, v in figures.items()}
    print("## Inventory build (bench/inventory.py)\n")
    hosts = SERVICES * PER_ROLE * len(ROLES)
    facts = (platform.machine(), os.cpu_count(), platform.python_version(), SERVICES, PER_ROLE * len(ROLES), hosts,
             args.runs)
    print("Machine: %s, %d cores, Python %s; %d cloud services x %d instances = %d hosts; median of %d runs, "
          "`ansible-inventory --list` end to end.\n" % facts)
    print("| inventory | median (s) | goal (s) | ratio to static YAML |")
    print("|---|---|---|---|")
    print("| static YAML, same hosts and variables (baseline) | %.2f | | 1.00 |" % med["static"])
    print("| role_instances plugin, reading the emulator | %.2f | 5 | %.2f |" % (med["plugin"], med["plugin"] / med["static"]))
    print("| role_instances plugin, from its cache | %.2f | 1 | %.2f |" % (med["cached"], med["cached"] / med["static"]))


if __name__ == "__main__":
    main()

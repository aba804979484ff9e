"""Benchmark: peak RSS of a module run and of an inventory build of 5,000 instances.

    .venv/bin/python bench/memory.py

Runs each process on its own and reads its peak resident set size (ru_maxrss of the finished child):
deployment_info and ansible.builtin.uri as module processes (the module file run directly with its
arguments, as Ansible's debug mode does), and ansible-inventory over the role_instances plugin against
the same over an equivalent static YAML inventory.
"""
import json
import os
import platform
import subprocess
import sys

import yaml

from harness import ROOT, start_emulator, bin_path
from bench.inventory import static_inventory, topology  # noqa: E402  (harness puts the checkout on the path)


def peak_rss_mib(cmd, env):
    """Peak RSS of one child process, in MiB (a fresh grandchild per measurement keeps figures apart)."""
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
             "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, check=True)
    code, kib = out.stdout.split()
    if code != "0":
        sys.exit("failed: %s" % " ".join(cmd))
    return int(kib) / 1024.0


def main():
    emu, work = start_emulator("memory")
    env = emu.env(PYTHONPATH=str(ROOT / "tests" / "output" / "collections"))
    info = emu.info
    rows = []
    try:
        ours_args = work / "ours.json"
        ours_args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "cloud_service": "contoso-web", "deployment_slot": "production"}}))
        rows.append(("`deployment_info` module process", peak_rss_mib(
            [sys.executable, "-m", "ansible_collections.azure_classic.cloud_services.plugins.modules.deployment_info",
             str(ours_args)], env)))
        uri_args = work / "uri.json"
        uri_args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "url": "%s/%s/services/hostedservices/contoso-web/deploymentslots/production" % (
                info["management_url"], info["subscription_id"]), "client_cert": info["certificate_path"],
            "ca_path": info["ca_path"], "headers": {"x-ms-version": "2014-10-01"}}}))
        rows.append(("`ansible.builtin.uri` module process, same GET (baseline)",
                     peak_rss_mib([sys.executable, "-m", "ansible.modules.uri", str(uri_args)], env)))
        emu.topology(topology(emu.subscription_id))
        config = work / "bench.role_instances.yml"
        config.write_text(yaml.safe_dump({"plugin": "azure_classic.cloud_services.role_instances"}))
        rows.append(("`ansible-inventory --list`, role_instances plugin, 5,000 instances",
                     peak_rss_mib([bin_path("ansible-inventory"), "-i", str(config), "--list"], env)))
        static = work / "static.yml"
        static_inventory(static)
        rows.append(("`ansible-inventory --list`, equivalent static YAML (baseline)",
                     peak_rss_mib([bin_path("ansible-inventory"), "-i", str(static), "--list"], env)))
    finally:
        emu.server.stop()
    print("## Memory (bench/memory.py)\n")
    print("Machine: %s, %d cores, Python %s; peak resident set size of each process.\n" % (
        platform.machine(), os.cpu_count(), platform.python_version()))
    print("| process | peak RSS (MiB) | ratio to its baseline |")
    print("|---|---|---|")
    print("| %s | %.0f | %.2f |" % (rows[0][0], rows[0][1], rows[0][1] / rows[1][1]))
    print("| %s | %.0f | 1.00 |" % rows[1])
    print("| %s | %.0f | %.2f |" % (rows[2][0], rows[2][1], rows[2][1] / rows[3][1]))
    print("| %s | %.0f | 1.00 |" % rows[3])


if __name__ == "__main__":
    main()

"""Benchmark: per-task overhead of role_instance_reimage (wait=false) against ansible.builtin.uri.

    .venv/bin/python bench/overhead.py [--runs 15]

Alternates, run by run, an ad hoc `ansible localhost -m azure_classic.cloud_services.role_instance_reimage -a
'... wait=false'` and an ad hoc `ansible localhost -m ansible.builtin.uri` making the same POST with the same
client certificate, against the emulator (operations of 0.2 s, so each run finds the deployment unlocked).
Prints medians and the ratio ours/uri, plus the module's import time split.
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import EmulatorServer  # noqa: E402
from tests.helpers import EmulatorHandle, bin_path, ensure_collection_path  # noqa: E402


def timed(cmd, env):
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), proc.stdout[-2000:] + proc.stderr[-2000:]))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    ensure_collection_path()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    server = EmulatorServer(str(work / "emulator"), 0, None, 0.2, 0.0)
    emu = EmulatorHandle(server.start(), server)
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
    times = {"ours": [], "uri": []}
    try:
        for run_number in range(args.runs):  # pylint: disable=unused-variable
            for name, cmd in (("ours", ours), ("uri", uri)):
                time.sleep(0.3)  # let the previous operation release the deployment's lock
                times[name].append(timed(cmd, env))
    finally:
        server.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    print("## Per-task overhead (bench/overhead.py)\n")
    print("Machine: %s, %d cores, Python %s; %d alternated runs of each, ad hoc `ansible localhost`, end to end.\n" % (
        platform.machine(), os.cpu_count(), platform.python_version(), args.runs))
    print("| task | median (s) | ratio to uri |")
    print("|---|---|---|")
    print("| `ansible.builtin.uri` POST with the client certificate (baseline) | %.3f | 1.00 |" % med["uri"])
    print("| `role_instance_reimage wait=false` | %.3f | **%.2f** |" % (med["ours"], med["ours"] / med["uri"]))


if __name__ == "__main__":
    main()

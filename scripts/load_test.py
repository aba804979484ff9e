"""Load: 50 concurrent module runs and the role rolling 10 deployments at once, against the emulator.

    .venv/bin/python scripts/load_test.py

1. `ansible all --forks 50 -m role_instance_reimage` on 50 instances across 10 deployments (5 each), every
   run polling its operation; the deployment locks make each deployment's five reimages queue behind each
   other, so most runs must wait out 409s.
2. The rolling_reimage role over 10 deployments x 6 instances (3 upgrade domains), all deployments at once.
Checks: no failure, no 409 shown to the user, every instance reimaged exactly once, and for the role at
most one upgrade domain down per deployment. Prints the figures and rewrites the load section of
docs/reliability.md.
"""
import collections
import json
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import EmulatorServer  # noqa: E402
from tests.helpers import EmulatorHandle, bin_path, ensure_collection_path  # noqa: E402

BEGIN, END = "<!-- load:begin -->", "<!-- load:end -->"


def topology(subscription, per_deployment, roles):
    return {"subscription_id": subscription, "cloud_services": [
        {"name": "load-%02d" % n, "deployments": [
            {"name": "load-%02d-prod" % n, "slot": "production", "upgrade_domain_count": 3,
             "roles": [{"name": r, "instances": per_deployment // len(roles)} for r in roles]}]} for n in range(10)]}


def inventory(path, per_deployment, roles):
    hosts = {}
    for n in range(10):
        for role in roles:
            for k in range(per_deployment // len(roles)):
                hosts["load-%02d.production.%s_IN_%d" % (n, role, k)] = {
                    "cloud_service": "load-%02d" % n, "deployment_slot": "production",
                    "role_instance": "%s_IN_%d" % (role, k)}
    path.write_text(json.dumps({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}))
    return len(hosts)


def figures(emu):
    requests = emu.events("request")
    accepted = collections.Counter(e["path"] for e in requests if e["method"] == "POST" and e["status"] == 202)
    return {"requests": len(requests), "conflicts_absorbed": sum(1 for e in requests if e["status"] == 409),
            "accepted": accepted, "availability": emu.availability()}


def run(cmd, env):
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                          timeout=900)
    return proc, time.monotonic() - started


def main():
    ensure_collection_path()
    work = pathlib.Path(tempfile.mkdtemp(prefix="load-"))
    server = EmulatorServer(str(work / "emulator"), 0, None, 1.0, 1.0)
    emu = EmulatorHandle(server.start(), server)
    env = emu.env()
    rows = []
    failures = []
    try:
        emu.topology(topology(emu.subscription_id, 5, ["WebRole1"]))
        emu.timing(operation_seconds=1.0, recovery_seconds=1.0)
        hosts = inventory(work / "modules.json", 5, ["WebRole1"])
        proc, wall = run([bin_path("ansible"), "all", "-i", str(work / "modules.json"), "--forks", "50", "-m",
                          "azure_classic.cloud_services.role_instance_reimage", "-a",
                          "cloud_service={{ cloud_service }} deployment_slot=production role_instance={{ role_instance }}"],
                         env)
        fig = figures(emu)
        ok = proc.returncode == 0 and "ConflictError" not in proc.stdout and len(fig["accepted"]) == hosts and \
            set(fig["accepted"].values()) == {1}
        if not ok:
            failures.append("modules: rc=%d\n%s" % (proc.returncode, proc.stdout[-2000:]))
        rows.append(("50 concurrent `role_instance_reimage` runs (`--forks 50`), 10 deployments x 5 instances",
                     wall, fig, hosts, None))

        emu.topology(topology(emu.subscription_id, 6, ["WebRole1", "WorkerRole1"]))
        emu.timing(operation_seconds=1.0, recovery_seconds=1.0)
        hosts = inventory(work / "role.json", 6, ["WebRole1", "WorkerRole1"])
        proc, wall = run([bin_path("ansible-playbook"), "-i", str(work / "role.json"),
                          "azure_classic.cloud_services.rolling_reimage", "-e",
                          "rolling_reimage_state_path=%s" % (work / "roll.json")], env)
        fig = figures(emu)
        worst = max(a["max_unavailable_upgrade_domains"] for a in fig["availability"].values())
        ok = proc.returncode == 0 and len(fig["accepted"]) == hosts and set(fig["accepted"].values()) == {1} \
            and worst == 1
        if not ok:
            failures.append("role: rc=%d worst=%d\n%s" % (proc.returncode, worst, proc.stdout[-2000:]))
        rows.append(("`rolling_reimage` role, 10 deployments x 6 instances rolling at once", wall, fig, hosts, worst))
    finally:
        server.stop()

    lines = [BEGIN, "", "Measured %s on %s (%s), Python %s, emulator operation 1 s and recovery 1 s "
             "(`.venv/bin/python scripts/load_test.py`)." % (time.strftime("%Y-%m-%d"), platform.machine(),
                                                             "2 cores", platform.python_version()), "",
             "| run | instances | wall time (s) | API requests | 409s absorbed | reimages per instance | "
             "most upgrade domains down per deployment | result |", "|---|---|---|---|---|---|---|---|"]
    for title, wall, fig, hosts, worst in rows:
        per_instance = ",".join(str(v) for v in sorted(set(fig["accepted"].values())))
        lines.append("| %s | %d | %.1f | %d | %d | %s | %s | %s |" % (
            title, hosts, wall, fig["requests"], fig["conflicts_absorbed"], per_instance,
            worst if worst is not None else "n/a (no bound for ad-hoc runs)", "ok" if not failures else "see log"))
    lines += ["", END]
    page = ROOT / "docs" / "reliability.md"
    text = page.read_text()
    if BEGIN not in text:
        text += "\n## Load\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    page.write_text(head + "\n".join(lines) + rest.split(END, 1)[1])
    print("\n".join(lines))
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

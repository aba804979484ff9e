#!/usr/bin/env bash
# The main job, on a fresh machine: bash scripts/rehearse.sh
# Starts the Service Management emulator (default topology: cloud service contoso-web with a production
# and a staging deployment, 2 roles x 3 instances in 3 upgrade domains), builds an inventory of its role
# instances, and runs the collection's rolling_reimage playbook against it with progress lines, then prints where
# the roll's HTML report is (tests/output/rehearse/, kept after the run; open it in a browser).
# Environment: OPERATION_SECONDS (default 3), RECOVERY_SECONDS (default 3), TARGET (default all),
# OPERATION (reimage, reboot or rebuild; default reimage).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/tests/output/collections"
work=$(mktemp -d -t rehearse.XXXXXX)
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

python -m tests.emulator --workdir "$work/emulator" --operation-seconds "${OPERATION_SECONDS:-3}" \
  --recovery-seconds "${RECOVERY_SECONDS:-3}" > "$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 100); do [ -f "$work/emulator/connection.json" ] && break; sleep 0.1; done
[ -f "$work/emulator/connection.json" ] || { cat "$work/emulator.log"; echo "the emulator did not start" >&2; exit 1; }

eval "$(python - "$work/emulator/connection.json" <<'PY'
import json, shlex, sys
info = json.load(open(sys.argv[1]))
for var, key in (("AZURE_SUBSCRIPTION_ID", "subscription_id"), ("AZURE_CERT_PATH", "certificate_path"),
                 ("AZURE_MANAGEMENT_URL", "management_url"), ("AZURE_CA_PATH", "ca_path")):
    print("export %s=%s" % (var, shlex.quote(info[key])))
PY
)"
echo "emulator: $AZURE_MANAGEMENT_URL (subscription $AZURE_SUBSCRIPTION_ID)"

# One host per role instance, as the role_instances inventory plugin would name them.
python - "$work/inventory.yml" <<'PY'
import sys, yaml
hosts = {}
for slot in ("production", "staging"):
    for role in ("WebRole1", "WorkerRole1"):
        for k in range(3):
            hosts["contoso-web.%s.%s_IN_%d" % (slot, role, k)] = {
                "cloud_service": "contoso-web", "deployment_slot": slot, "role_instance": "%s_IN_%d" % (role, k),
                "cloud_role": role}
yaml.safe_dump({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}, open(sys.argv[1], "w"))
PY
# The report outlives the emulator's temporary folder, so it can be opened after the run.
report_dir="$root/tests/output/rehearse"
mkdir -p -m 0700 "$report_dir"
report="$report_dir/roll-$(date -u +%Y%m%dT%H%M%SZ).html"
status=0
ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ansible-playbook -i "$work/inventory.yml" azure_classic.cloud_services.rolling_reimage \
  -e "target=${TARGET:-all}" -e "operation=${OPERATION:-reimage}" -e "rolling_reimage_state_path=$work/roll.json" \
  -e "rolling_reimage_report_path=$report" || status=$?
echo
echo "emulator availability (most instances / upgrade domains down at once, per deployment):"
python - "$work/emulator/connection.json" <<'PY'
import json, sys, requests
info = json.load(open(sys.argv[1]))
admin = {"Authorization": "Bearer %s" % info["admin_token"]}
for name, figures in requests.get(info["admin_url"] + "/availability", headers=admin, verify=info["ca_path"],
                                  timeout=10).json().items():
    print("  %-36s %d instance(s), %d upgrade domain(s)" % (name, figures["max_unavailable_instances"],
                                                           figures["max_unavailable_upgrade_domains"]))
PY
echo
if [ -s "$report" ]; then
  echo "roll report (self-contained HTML, open it in a browser): $report"
else
  echo "no roll report was written (the roll did not start; the output above says why)"
fi
exit "$status"

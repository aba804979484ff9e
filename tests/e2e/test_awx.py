"""The AWX credential type, proved the way AWX runs a job: ansible-runner with injected env and file only."""
import glob
import json
import os
import pathlib
import subprocess
import sys

import jinja2
import yaml

from tests.helpers import ROOT, bin_path, ensure_collection_path

CREDENTIAL_TYPE = ROOT / "extensions" / "awx" / "credential_type.yml"


def inject(emulator, private_dir):
    """Render the shipped injectors as AWX does: the file template into a private file, then the env templates."""
    definition = yaml.safe_load(CREDENTIAL_TYPE.read_text())
    with open(emulator.info["certificate_path"], encoding="utf-8") as handle:
        inputs = {"subscription_id": emulator.subscription_id, "management_certificate": handle.read(),
                  "management_url": emulator.url}
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    cert_file = private_dir / "credential_cert"
    cert_file.write_text(env.from_string(definition["injectors"]["file"]["template"]).render(**inputs))
    cert_file.chmod(0o600)
    context = dict(inputs, tower={"filename": str(cert_file)})
    return {k: env.from_string(v).render(**context) for k, v in definition["injectors"]["env"].items()}


def runner(emulator, tmp_path, *args):
    private = tmp_path / "job"
    for sub in ("env", "project", "inventory"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    envvars = inject(emulator, private)
    # Not part of the credential: the emulator's private CA, as an AWX admin would trust it for the job.
    envvars.update(AZURE_CA_PATH=emulator.info["ca_path"], ANSIBLE_COLLECTIONS_PATH=str(ensure_collection_path()))
    (private / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    hosts = {"contoso-web.production.WebRole1_IN_%d" % k: {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_%d" % k}
        for k in range(3)}
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"web": {"hosts": hosts}}, "vars": {"ansible_connection": "local",
                                                                 "ansible_python_interpreter": sys.executable}}}))
    (private / "project" / "roll.yml").write_text("""
- hosts: web
  gather_facts: false
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars:
        rolling_reimage_state_path: %s
""" % (tmp_path / "roll.json"))
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    clean_env["PATH"] = "%s:%s" % (pathlib.Path(sys.executable).parent, clean_env.get("PATH", ""))
    proc = subprocess.run([bin_path("ansible-runner"), "run", str(private), *args], env=clean_env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    return proc, private


def _events(private):
    events = []
    for path in glob.glob(str(private / "artifacts" / "*" / "job_events" / "*.json")):
        with open(path, encoding="utf-8") as handle:
            events.append(json.load(handle))
    return events


def test_credential_type_runs_an_adhoc_reimage(emulator, tmp_path):
    proc, private = runner(emulator, tmp_path, "--hosts", "localhost", "-m",
                           "azure_classic.cloud_services.role_instance_reimage",
                           "-a", "cloud_service=contoso-web deployment_slot=production role_instance=WorkerRole1_IN_1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(emulator.accepted()) == 1
    ok = [e for e in _events(private) if e.get("event") == "runner_on_ok"]
    assert ok and ok[0]["event_data"]["res"]["status"] == "Succeeded"
    certificate = emulator.info["certificate_path"]
    secret = pathlib.Path(certificate).read_text().split("-----BEGIN PRIVATE KEY-----")[1][:64]
    for path in glob.glob(str(private / "artifacts" / "**" / "*"), recursive=True):
        if os.path.isfile(path):
            assert secret not in pathlib.Path(path).read_text(errors="replace"), "private key in %s" % path


def test_credential_type_runs_the_rolling_role_and_artifacts_show_the_summary(emulator, tmp_path):
    proc, private = runner(emulator, tmp_path, "-p", "roll.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stats = [e for e in _events(private) if e.get("event") == "playbook_on_stats"]
    summary = stats[0]["event_data"]["artifact_data"]["rolling_reimage"]
    assert summary["status"] == "complete" and summary["counts"]["done"] == 3
    assert len(emulator.accepted()) == 3

"""The AWX credential type, proved the way AWX runs a job: ansible-runner with injected env and file only."""
import base64
import glob
import json
import os
import pathlib
import subprocess
import sys
import types

import jinja2
import jinja2.sandbox
import yaml

from tests.helpers import ROOT, bin_path, ensure_collection_path

CREDENTIAL_TYPE = ROOT / "extensions" / "awx" / "credential_type.yml"


def inject(private_dir, inputs):
    """Render the shipped injectors as AWX does (awx.main.models.credential.CredentialType.inject_credential): in a
    sandbox, with only the inputs the credential has; each file template into a private file of its own (written
    even when it renders empty), then the env templates, which see the files as tower.filename.<name>."""
    definition = yaml.safe_load(CREDENTIAL_TYPE.read_text())
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    filenames = types.SimpleNamespace()
    for label, template in definition["injectors"]["file"].items():
        assert label.startswith("template."), "one file per input, each named"
        path = private_dir / ("credential_" + label.split(".", 1)[1])
        path.write_text(env.from_string(template).render(**inputs))
        path.chmod(0o600)
        setattr(filenames, label.split(".", 1)[1], str(path))
    context = dict(inputs, tower=types.SimpleNamespace(filename=filenames))
    return {k: env.from_string(v).render(**context) for k, v in definition["injectors"]["env"].items()}


def pem_inputs(emulator):
    with open(emulator.info["certificate_path"], encoding="utf-8") as handle:
        return {"subscription_id": emulator.subscription_id, "management_certificate": handle.read(),
                "management_url": emulator.url}


def runner(emulator, tmp_path, *args, inputs=None, playbook=None, trust=True, extra_env=None):
    """ansible-runner with the credential's environment only (``inputs`` or the PEM certificate's); ``trust``: the
    emulator's private CA given as an AWX admin would trust it for the job, outside the credential."""
    private = tmp_path / "job"
    for sub in ("env", "project", "inventory"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    envvars = inject(private, pem_inputs(emulator) if inputs is None else inputs)
    if trust:
        envvars.update(AZURE_CA_PATH=emulator.info["ca_path"])
    envvars.update(extra_env or {}, ANSIBLE_COLLECTIONS_PATH=str(ensure_collection_path()))
    (private / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    hosts = {"contoso-web.production.WebRole1_IN_%d" % k: {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_%d" % k}
        for k in range(3)}
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"web": {"hosts": hosts}}, "vars": {"ansible_connection": "local",
                                                                 "ansible_python_interpreter": sys.executable}}}))
    (private / "project" / "roll.yml").write_text(playbook or """
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


def test_the_credential_type_injects_the_ca_path_and_cloud_environment_through_ansible_runner(emulator, tmp_path):
    """A PFX as base64 with its password, the emulator's CA as the credential's CA bundle (nothing else trusts it),
    a cloud environment: the job sees them, and the rolling role rolls with them."""
    manifest = emulator.server.manifest
    inputs = {"subscription_id": emulator.subscription_id, "management_url": emulator.url,
              "management_certificate": base64.b64encode(pathlib.Path(manifest["pfx_path"]).read_bytes()).decode(),
              "certificate_password": manifest["pfx_password"], "cloud_environment": "AzureChinaCloud",
              "ca_bundle": pathlib.Path(emulator.info["ca_path"]).read_text()}
    show = tmp_path / "seen.json"
    proc, private = runner(emulator, tmp_path, "-p", "roll.yml", inputs=inputs, trust=False, playbook="""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: What the credential gave the job
      ansible.builtin.copy:
        dest: %s
        mode: "0600"
        content: "{{ {'cloud': lookup('env', 'AZURE_CLOUD_ENVIRONMENT'), 'ca': lookup('env', 'AZURE_CA_PATH')} | to_json }}"
- hosts: web
  gather_facts: false
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars:
        rolling_reimage_state_path: %s
""" % (show, tmp_path / "roll.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = json.loads(show.read_text())
    assert seen["cloud"] == "AzureChinaCloud"
    assert pathlib.Path(seen["ca"]).read_text() == inputs["ca_bundle"] and seen["ca"] != emulator.info["ca_path"]
    stats = [e for e in _events(private) if e.get("event") == "playbook_on_stats"]
    assert stats[0]["event_data"]["artifact_data"]["rolling_reimage"]["counts"]["done"] == 3
    assert len(emulator.accepted()) == 3
    for path in glob.glob(str(private / "artifacts" / "**" / "*"), recursive=True):
        if os.path.isfile(path):
            assert inputs["certificate_password"] not in pathlib.Path(path).read_text(errors="replace") or \
                path.endswith("/command"), "the PFX password in %s" % path


def test_a_credential_without_ca_bundle_or_cloud_uses_the_system_store_and_azure_cloud(emulator, tmp_path):
    """Left empty, the CA bundle injects an empty AZURE_CA_PATH, which modules, the role and the inventory plugin
    read as "not set": the system store (here the emulator's CA, through SSL_CERT_FILE) is used."""
    inventory_source = tmp_path / "job" / "inventory" / "azure.role_instances.yml"
    inventory_source.parent.mkdir(parents=True)
    inventory_source.write_text("plugin: azure_classic.cloud_services.role_instances\ncloud_services: [contoso-web]\n")
    proc, _private = runner(emulator, tmp_path, "-p", "roll.yml", trust=False,
                            extra_env={"SSL_CERT_FILE": emulator.info["ca_path"]}, playbook="""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The credential says no CA bundle and the public cloud; the inventory plugin read the instances
      ansible.builtin.assert:
        that:
          - lookup('env', 'AZURE_CA_PATH') == ''
          - lookup('env', 'AZURE_CLOUD_ENVIRONMENT') == 'AzureCloud'
          - groups['cloud_service_contoso_web'] | length == 12
    - name: A module reads through the system store
      azure_classic.cloud_services.deployment_info:
        cloud_service: contoso-web
        deployment_slot: production
""")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout, proc.stdout

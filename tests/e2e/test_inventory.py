"""The role_instances inventory plugin through ansible-inventory and ansible-playbook against the emulator."""
import json
import subprocess

import yaml

from tests.helpers import bin_path, run_playbook

TOPOLOGY = {"cloud_services": [
    {"name": "alpha", "deployments": [
        {"name": "alpha-prod", "slot": "production", "upgrade_domain_count": 2,
         "roles": [{"name": "WebRole1", "instances": 2}, {"name": "WorkerRole1", "instances": 2}]},
        {"name": "alpha-stage", "slot": "staging", "upgrade_domain_count": 2, "roles": [{"name": "WebRole1", "instances": 1}]}]},
    {"name": "beta-svc", "deployments": [
        {"name": "beta-prod", "slot": "production", "upgrade_domain_count": 3, "roles": [{"name": "WebRole1", "instances": 3}]}]},
]}


def config(tmp_path, **options):
    path = tmp_path / "test.role_instances.yml"
    path.write_text(yaml.safe_dump(dict({"plugin": "azure_classic.cloud_services.role_instances"}, **options)))
    return path


def inventory(emulator, path, *args, env=None):
    proc = subprocess.run([bin_path("ansible-inventory"), "-i", str(path), *args], env=emulator.env(**(env or {})),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    return proc


def plain(value):
    """ansible-core 2.19 marks strings from inventory plugins as {"__ansible_unsafe": ...} in --list output."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def listing(emulator, path, env=None, *args):
    proc = inventory(emulator, path, "--list", *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return plain(json.loads(proc.stdout)), proc.stderr


def load(emulator):
    emulator.topology(dict(TOPOLOGY, subscription_id=emulator.subscription_id))


def test_every_instance_with_variables_and_default_groups(emulator, tmp_path):
    load(emulator)
    data, _stderr = listing(emulator, config(tmp_path))
    hostvars = data["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted(
        ["alpha.production.WebRole1_IN_0", "alpha.production.WebRole1_IN_1", "alpha.production.WorkerRole1_IN_0",
         "alpha.production.WorkerRole1_IN_1", "alpha.staging.WebRole1_IN_0", "beta-svc.production.WebRole1_IN_0",
         "beta-svc.production.WebRole1_IN_1", "beta-svc.production.WebRole1_IN_2"])
    host = hostvars["beta-svc.production.WebRole1_IN_2"]
    assert {k: host[k] for k in ("cloud_service", "deployment_name", "deployment_slot", "cloud_role", "role_instance",
                                 "upgrade_domain", "fault_domain", "instance_status", "power_state", "instance_size",
                                 "ansible_connection")} == {
        "cloud_service": "beta-svc", "deployment_name": "beta-prod", "deployment_slot": "production",
        "cloud_role": "WebRole1", "role_instance": "WebRole1_IN_2", "upgrade_domain": 2, "fault_domain": 0,
        "instance_status": "ReadyRole", "power_state": "Started", "instance_size": "Small",
        "ansible_connection": "local"}
    from ansible_collections.azure_classic.cloud_services.plugins.inventory.role_instances import HOST_VARIABLES
    assert set(host) == set(HOST_VARIABLES) | {"ansible_connection"}, "--list shows every variable the plugin sets"
    assert host["ip_address"].startswith("10.")
    assert set(data["cloud_service_beta_svc"]["hosts"]) == {h for h in hostvars if h.startswith("beta-svc.")}
    assert len(data["role_WorkerRole1"]["hosts"]) == 2 and len(data["upgrade_domain_2"]["hosts"]) == 1
    assert len(data["slot_staging"]["hosts"]) == 1
    graph = inventory(emulator, config(tmp_path), "--graph")
    assert graph.returncode == 0 and "@role_WebRole1:" in graph.stdout


def test_filters_keyed_groups_compose_and_hostname_template(emulator, tmp_path):
    load(emulator)
    path = config(tmp_path, cloud_services=["alpha"], slots=["production"], role_names=["WebRole1"],
                  hostname_template="{{ deployment_name }}-{{ role_instance }}",
                  keyed_groups=[{"key": "instance_status", "prefix": "status"}],
                  groups={"even": "fault_domain == 0"}, compose={"ansible_connection": "'ssh'"})
    data, _stderr = listing(emulator, path)
    assert sorted(data["_meta"]["hostvars"]) == ["alpha-prod-WebRole1_IN_0", "alpha-prod-WebRole1_IN_1"]
    assert sorted(data["status_ReadyRole"]["hosts"]) == ["alpha-prod-WebRole1_IN_0", "alpha-prod-WebRole1_IN_1"]
    assert data["even"]["hosts"] == ["alpha-prod-WebRole1_IN_0"]
    assert data["_meta"]["hostvars"]["alpha-prod-WebRole1_IN_0"]["ansible_connection"] == "ssh", "compose overrides"
    data, _stderr = listing(emulator, config(tmp_path, instance_statuses=["BusyRole"]))
    assert data["_meta"]["hostvars"] == {}


def test_a_failing_cloud_service_is_named_or_fatal_when_strict(emulator, tmp_path):
    load(emulator)
    emulator.fault(method="GET", path="hostedservices/beta-svc", times=100, action={"status": 500})
    data, stderr = listing(emulator, config(tmp_path, retries=0))
    assert all(not h.startswith("beta-svc.") for h in data["_meta"]["hostvars"]) and len(data["_meta"]["hostvars"]) == 5
    stderr = " ".join(stderr.split())  # 2.16 wraps warnings across lines
    assert "cannot read cloud service beta-svc" in stderr and "InternalError" in stderr
    proc = inventory(emulator, config(tmp_path, retries=0, strict=True), "--list",
                     env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert proc.returncode != 0 and "cannot read cloud service beta-svc" in " ".join(proc.stderr.split())


def test_transient_errors_are_retried(emulator, tmp_path):
    load(emulator)
    emulator.fault(method="GET", path="hostedservices/alpha", times=2, action={"status": 503})
    data, stderr = listing(emulator, config(tmp_path))
    assert len(data["_meta"]["hostvars"]) == 8 and "WARNING" not in stderr


def test_bad_connection_fails_clearly(emulator, tmp_path):
    proc = inventory(emulator, config(tmp_path), "--list", env={"AZURE_CERT_PATH": "/nonexistent.pem"})
    assert "/nonexistent.pem does not exist" in " ".join(proc.stderr.split())  # 2.16 wraps warnings
    assert '"hostvars": {}' not in proc.stdout.replace("\n", "") or "Unable to parse" in proc.stderr


def test_cache_is_used_and_flushed(emulator, tmp_path):
    load(emulator)
    path = config(tmp_path, cache=True, cache_plugin="ansible.builtin.jsonfile",
                  cache_connection=str(tmp_path / "cache"), cache_timeout=300)
    first, _stderr = listing(emulator, path)
    emulator.server.emulator.events.clear()
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "alpha", "deployments": [{"name": "a", "slot": "production", "roles": [{"name": "R"}]}]}]})
    cached, _stderr = listing(emulator, path)
    assert cached["_meta"]["hostvars"] == first["_meta"]["hostvars"]
    assert emulator.requests_made() == [], "a cache hit sends no request"
    help_text = inventory(emulator, path, "--help").stdout
    if "--flush-cache" in help_text:
        fresh, _stderr = listing(emulator, path, None, "--flush-cache")
    else:  # ansible-inventory 2.16 has no --flush-cache: an expired cache must be refreshed instead
        for entry in (tmp_path / "cache").iterdir():
            entry.unlink()
        fresh, _stderr = listing(emulator, path)
    assert sorted(fresh["_meta"]["hostvars"]) == ["alpha.production.R_IN_0"]


def test_no_variable_is_an_ansible_reserved_or_internal_name():
    from ansible import constants as C
    from ansible.vars.reserved import get_reserved_names
    from ansible_collections.azure_classic.cloud_services.plugins.inventory.role_instances import HOST_VARIABLES
    clashes = set(HOST_VARIABLES) & (set(get_reserved_names()) | set(C.INTERNAL_STATIC_VARS) | set(C.MAGIC_VARIABLE_MAPPING))
    assert not clashes
    assert "role_name" in set(get_reserved_names()) | set(C.INTERNAL_STATIC_VARS), "the check sees role_name"


def test_rolling_role_on_a_group_the_plugin_made(emulator, tmp_path):
    """Facts gathering left on: the plugin's hosts use the local connection, no ssh."""
    load(emulator)
    proc = run_playbook(emulator, """
- hosts: role_WorkerRole1
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars:
        rolling_reimage_state_path: %s
""" % (tmp_path / "roll.json"), tmp_path, inventory=config(tmp_path))
    assert proc.returncode == 0, proc.output
    accepted = sorted(e["path"].split("/roleinstances/")[1] for e in emulator.accepted())
    assert accepted == ["WorkerRole1_IN_0", "WorkerRole1_IN_1"]


def test_a_template_in_service_data_or_the_cache_stays_text(emulator, tmp_path):
    """On every ansible-core we claim (2.16 included), data from the API or the cache is never templated."""
    marker = tmp_path / "templated"
    evil = "R{{ lookup('pipe', 'touch %s') }}" % marker
    # A name is checked against the service's rules (test_hostile_names_and_secrets); other values stay text.
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "alpha", "deployments": [{"name": "alpha-prod", "slot": "production",
                                           "roles": [{"name": "WebRole1", "instances": 1, "size": evil}]}]}]})
    path = config(tmp_path, hostname_template="{{ cloud_role }}-{{ role_instance }}",
                  compose={"label": "instance_size ~ '-x'"}, keyed_groups=[{"key": "instance_size", "prefix": "r"}],
                  cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"))
    graph = inventory(emulator, path, "--graph")
    assert graph.returncode == 0, graph.stdout + graph.stderr
    listed, _stderr = listing(emulator, path)
    host = next(iter(listed["_meta"]["hostvars"].values()))
    assert host["instance_size"] == evil and host["label"] == evil + "-x"
    proc = subprocess.run([bin_path("ansible"), "all", "-i", str(path), "-m", "ansible.builtin.debug",
                           "-a", "var=instance_size"], env=emulator.env(), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0 and "lookup('pipe'" in proc.stdout, proc.stdout + proc.stderr
    # An edited cache entry is data too.
    for entry in (tmp_path / "cache").iterdir():
        stored = json.loads(entry.read_text())
        wrapped = isinstance(stored, dict) and "__payload__" in stored  # ansible-core 2.19's jsonfile layout
        records = json.loads(stored["__payload__"]) if wrapped else stored
        records[0]["ip_address"] = "{{ lookup('pipe', 'touch %s') }}" % marker
        entry.write_text(json.dumps(dict(stored, __payload__=json.dumps(records)) if wrapped else records))
    listed, _stderr = listing(emulator, path)
    assert "lookup('pipe'" in next(iter(listed["_meta"]["hostvars"].values()))["ip_address"]
    assert not marker.exists(), "a template from the service or the cache ran on the controller"


def test_a_bad_cloud_service_filter_fails_before_any_request(emulator, tmp_path):
    proc = inventory(emulator, config(tmp_path, cloud_services=["alpha", "beta/../x"]), "--list",
                     env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert proc.returncode != 0
    assert "cloud_service 'beta/../x' is not a valid name" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert emulator.requests_made() == []

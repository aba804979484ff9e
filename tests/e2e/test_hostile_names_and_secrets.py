"""Issue 24: names from the service that break its naming rules never become hosts (a template in one ran through
inventory_hostname on ansible-core 2.16 to 2.18); a proxy's password shows nowhere; the service's control
characters are shown escaped; the report's folder is checked; the health gate's CA reaches it; health_url is no_log."""
import json
import os
import pathlib
import socket
import subprocess

import pytest
import yaml

from tests.e2e.test_proxy import ConnectProxy
from tests.e2e.test_rolling_role import report_path_in
from tests.helpers import ROOT, HealthEndpoint, bin_path, run_adhoc, run_playbook

INFO = {"cloud_service": "contoso-web", "deployment_slot": "production"}
SECRET = "S3cr3t"


def ansible_bins():
    """The ansible-core of this run and, when the checkout has it, the oldest one supported (2.16), which
    templates inventory_hostname: the hostile-name cases must hold on both."""
    bins = {"current": pathlib.Path(bin_path("ansible-playbook")).parent}
    oldest = ROOT / ".venv-oldest" / "bin"
    if (oldest / "ansible-playbook").exists() and oldest.resolve() != bins["current"].resolve():
        bins["oldest"] = oldest
    return bins


BINS = ansible_bins()


def run(emulator, directory, *args, env=None):
    proc = subprocess.run([str(BINS[directory] / args[0]), *args[1:]], env=emulator.env(**(env or {})),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    proc.output = proc.stdout + proc.stderr
    return proc


def inventory_config(tmp_path, **options):
    path = tmp_path / "hostile.role_instances.yml"
    path.write_text(yaml.safe_dump(dict({"plugin": "azure_classic.cloud_services.role_instances"}, **options)))
    return path


def use_inventory_hostname(emulator, directory, config, tmp_path):
    """A play that names each host in a task: where ansible-core templates inventory_hostname."""
    play = tmp_path / "names.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.debug:\n        msg: \"host {{ inventory_hostname }}\"\n")
    return run(emulator, directory, "ansible-playbook", "-i", str(config), str(play))


def flat(text):
    return " ".join(text.split())  # 2.16 wraps warnings across lines


# -- item 1: names from the service ------------------------------------------------------------------------------

@pytest.mark.parametrize("directory", sorted(BINS))
def test_names_breaking_the_services_rules_never_become_hosts(emulator, tmp_path, directory):
    marker = tmp_path / "ran"
    evil = "{{ lookup('pipe', 'touch %s') }}" % marker
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "alpha", "deployments": [{"name": "alpha-prod", "slot": "production", "roles": [
            {"name": "WebRole1", "instances": 1}, {"name": evil, "instances": 1},
            {"name": "Web\u202eRole", "instances": 1}]}]},
        {"name": "beta", "deployments": [{"name": "beta{%% if lookup('pipe', 'touch %s') %%}{%% endif %%}" % marker,
                                          "slot": "production", "roles": [{"name": "WorkerRole1", "instances": 1}]}]},
    ]})
    proc = use_inventory_hostname(emulator, directory, inventory_config(tmp_path), tmp_path)
    assert proc.returncode == 0, proc.output
    assert not marker.exists(), "a template in a name from the service ran on the controller"
    assert "host alpha.production.WebRole1_IN_0" in proc.output
    assert proc.output.count("ok: [") == 1, "only the instance whose names follow the service's rules is a host"
    text = flat(proc.output)
    assert "cloud service alpha: role_name \"{{ lookup('pipe', 'touch" in text, proc.output
    assert "is not a valid name" in text and "that role instance is left out" in text
    assert "cloud service beta: deployment_name \"beta{% if lookup('pipe'" in text
    assert "role_name 'Web\\u202eRole' is not a valid name" in text and "\u202e" not in proc.output, \
        "the bidi override is shown escaped"


@pytest.mark.parametrize("directory", sorted(BINS))
def test_a_template_marker_made_by_hostname_template_is_refused(emulator, tmp_path, directory):
    marker = tmp_path / "ran"
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "alpha", "deployments": [{"name": "alpha-prod", "slot": "production", "roles": [
            {"name": "WebRole1", "instances": 1, "size": "{{ lookup('pipe', 'touch %s') }}" % marker},
            {"name": "WorkerRole1", "instances": 1}]}]}]})
    config = inventory_config(tmp_path, hostname_template="{{ instance_size }}-{{ role_instance }}")
    proc = use_inventory_hostname(emulator, directory, config, tmp_path)
    assert proc.returncode == 0, proc.output
    assert not marker.exists(), "a template in a value from the service ran on the controller"
    assert "host Small-WorkerRole1_IN_0" in proc.output and proc.output.count("ok: [") == 1, proc.output
    assert "holds a template marker" in flat(proc.output)


# -- item 3: a proxy's password -----------------------------------------------------------------------------------

def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proxy_env(url):
    env = {name: None for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                   "all_proxy", "NO_PROXY", "no_proxy")}
    env["HTTPS_PROXY"] = url
    return env


@pytest.mark.parametrize("userinfo", ["alice:%s-pw@" % SECRET, "alice:%s pw@" % SECRET, "alice:%s/pw@" % SECRET])
@pytest.mark.parametrize("scheme", ["", "http://"])
def test_a_proxy_password_never_shows_in_a_modules_output(emulator, scheme, userinfo):
    port = closed_port()
    rc, result, out = run_adhoc(emulator, "deployment_info", dict(INFO, retries=0),
                                env=proxy_env("%s%s127.0.0.1:%d" % (scheme, userinfo, port)), extra=("-vvv",))
    assert rc != 0 and result, out
    assert SECRET not in out and "alice" not in out, out
    assert "proxy http://127.0.0.1:%d " % port in result["msg"] and result["msg"] == result["error"]["message"]
    assert emulator.requests_made() == []


class ProxyThatStopsTunnelling(ConnectProxy):
    """Relays until ``flag`` exists, then refuses every CONNECT (403)."""

    def __init__(self, flag):
        self.flag = flag
        super().__init__()

    @property
    def refuse(self):
        return "403 Forbidden" if self.flag.exists() else None

    @refuse.setter
    def refuse(self, value):
        del value


def roll_play(tmp_path, instances, **role_vars):
    hosts = {"contoso-web.production." + name: dict(INFO, role_instance=name) for name in instances}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts,
                                                                    "vars": {"ansible_connection": "local"}}}))
    role_vars.setdefault("rolling_reimage_state_path", str(tmp_path / "roll.json"))
    return ("- hosts: all\n  gather_facts: false\n  roles:\n    - role: azure_classic.cloud_services.rolling_reimage\n"
            "      vars: %s\n" % json.dumps(role_vars)), tmp_path / "inventory.yml"


def test_a_proxy_password_never_reaches_the_rolls_state_file_or_report(emulator, tmp_path):
    """The proxy refuses the second round's tunnel: the instance's failure names the proxy, and the state file and
    the report keep that message."""
    flag = tmp_path / "refuse"
    proxy = ProxyThatStopsTunnelling(flag)
    tasks = tmp_path / "between.yml"
    tasks.write_text("- name: The proxy stops tunnelling\n  ansible.builtin.file:\n    path: %s\n    state: touch\n"
                     "    mode: '0600'\n  run_once: true\n  delegate_to: localhost\n" % flag)
    play, inventory = roll_play(tmp_path, ("WebRole1_IN_0", "WebRole1_IN_1"), rolling_reimage_health_tasks=str(tasks))
    try:
        proc = run_playbook(emulator, play, tmp_path, inventory=inventory, extra=("-v",),
                            env=proxy_env(proxy.url("alice:%s pw" % SECRET)))
    finally:
        proxy.close()
    shown = "proxy http://127.0.0.1:%d refused" % proxy.port
    assert proc.returncode != 0 and shown in proc.output, proc.output
    state = (tmp_path / "roll.json").read_text()
    report = report_path_in(proc.output).read_text()
    assert shown in state and shown in report
    for text in (proc.output, state, report):
        assert SECRET not in text and "alice" not in text


# -- item 7: the service's control characters, the report's folder, the health gate -----------------------------

BIDI = "Deny \u202etxt.exe"


def test_a_control_character_in_a_service_message_is_shown_escaped(emulator):
    emulator.fault(method="GET", path="deployments", times=5,
                   action={"status": 400, "code": "BadRequest", "message": BIDI + "\u2066"})
    rc, result, out = run_adhoc(emulator, "deployment_info", dict(INFO, retries=0))
    assert rc != 0 and result, out
    assert result["error"]["message"] == "Deny \\u202etxt.exe\\u2066"
    assert "Deny \\u202etxt.exe\\u2066" in result["msg"] and "\u202e" not in result["msg"]


def test_a_control_character_in_a_failed_operation_is_escaped_in_the_table_state_and_report(emulator, tmp_path):
    emulator.fault(method="POST", path="comp=reimage", action={"fail_operation": {"code": "InternalError",
                                                                                  "message": BIDI}})
    play, inventory = roll_play(tmp_path, ("WebRole1_IN_0",))
    proc = run_playbook(emulator, play, tmp_path, inventory=inventory)
    assert proc.returncode != 0, proc.output
    state = (tmp_path / "roll.json").read_text(encoding="utf-8")
    report = report_path_in(proc.output).read_text(encoding="utf-8")
    table = proc.output.split("Summarize the roll", 1)[1]
    for text in (table, report):
        assert "Deny \\u202etxt.exe" in text and "\u202e" not in text
    assert "\u202e" not in proc.output and "\u202e" not in json.dumps(json.loads(state), ensure_ascii=False)


def test_a_report_folder_others_may_write_is_refused_with_a_warning(emulator, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    play, inventory = roll_play(tmp_path, ("WebRole1_IN_0",), rolling_reimage_report_path=str(shared / "roll.html"))
    proc = run_playbook(emulator, play, tmp_path, inventory=inventory)
    assert proc.returncode == 0, proc.output
    expected = "the roll's HTML report could not be written to %s: its folder %s is writable by other users (mode 777)" % (
        shared / "roll.html", shared)
    assert "".join(expected.split()) in "".join(proc.output.split()), proc.output  # 2.16 wraps even paths
    assert list(shared.iterdir()) == [], "nothing is written into it"


def test_the_health_gate_uses_the_roles_ca_path_and_its_url_is_never_shown(emulator, tmp_path):
    endpoint = HealthEndpoint(emulator)
    url = endpoint.url.replace("://", "://gate:hunter2@", 1) + "/"
    play, inventory = roll_play(tmp_path, ("WebRole1_IN_0", "WebRole1_IN_1"), rolling_reimage_health_url=url,
                                rolling_reimage_health_ca_path=emulator.info["ca_path"], rolling_reimage_health_timeout=10)
    try:
        proc = run_playbook(emulator, play, tmp_path, inventory=inventory, extra=("-vvv",))
    finally:
        endpoint.close()
    assert proc.returncode == 0, proc.output
    assert endpoint.paths == ["/", "/", "/"], "checked before the roll and after each round, over TLS verified with " \
        "the role's CA"
    assert "health gate: https://***@127.0.0.1:%d/ answered 200" % endpoint.httpd.server_address[1] in proc.output
    assert "hunter2" not in proc.output

"""Bad input fails clearly before any request; secrets never reach output or disk."""
import base64
import datetime
import pathlib
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from tests.helpers import bin_path, run_adhoc, run_playbook

BASE = {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"}
PASSWORD = "correct-horse-battery"


def _cert(days=30, before=-1):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=before))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    return key, cert


def _pem(key, cert, password=None):
    enc = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_files(tmp_path, emulator):
    key, cert = _cert()
    files = {
        "empty": b"",
        "no_key": cert.public_bytes(serialization.Encoding.PEM),
        "encrypted": _pem(key, cert, PASSWORD),
        "expired": _pem(*_cert(days=-1, before=-30)),
        "future": _pem(*_cert(days=60, before=10)),
        "other_sub": ('<PublishData><PublishProfile SchemaVersion="2.0"><Subscription Id="00000000-0000-4000-8000-'
                      '0000000000ff" Name="x" ManagementCertificate="%s"/></PublishProfile></PublishData>' % base64.b64encode(
                          pkcs12.serialize_key_and_certificates(b"", key, cert, None, serialization.NoEncryption())
                      ).decode()).encode(),
    }
    paths = {}
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


CASES = [
    ("empty", {}, "is empty"),
    ("no_key", {}, "holds no private key"),
    ("encrypted", {}, "is encrypted: set certificate_password"),
    ("encrypted", {"AZURE_CERT_PASSWORD": "wrong-" + PASSWORD}, "certificate_password is wrong"),
    ("expired", {}, "expired on"),
    ("future", {}, "is not valid before"),
    ("other_sub", {}, "has no subscription"),
    ("pfx", {"AZURE_CERT_PASSWORD": "wrong-" + PASSWORD}, "certificate_password is wrong"),
]


@pytest.mark.parametrize("which,env,message", CASES)
def test_certificate_problems_fail_clearly_send_nothing_and_leak_nothing(emulator, tmp_path, which, env, message):
    paths = make_files(tmp_path, emulator)
    path = emulator.info["pfx_path"] if which == "pfx" else paths[which]
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", BASE, extra=["-vvv"],
                                env=dict(env, AZURE_CERT_PATH=path))
    assert rc != 0 and message in result.get("msg", ""), out
    assert "Traceback" not in out and emulator.requests_made() == []
    for secret in (PASSWORD, emulator.info["pfx_password"], "PRIVATE KEY", "MII"):
        assert secret not in out, "secret material in the output: %s" % secret


@pytest.mark.parametrize("field,value,message", [
    ("role_instance", "Web\x01Role", "is not a valid name"),
    ("role_instance", "Web%2FRole", "is not a valid name"),
    ("role_instance", "WebRole1_IN_0/../x", "is not a valid name"),
    ("deployment_name", "prod deployment", "is not a valid name"),
    ("deployment_name", "d" * 101, "the service allows at most 100"),
    ("cloud_service", "c" * 64, "the service allows at most 63"),
    ("cloud_service", "contoso#web", "is not a valid name"),
])
def test_names_the_service_would_refuse(emulator, field, value, message):
    args = dict(BASE)
    if field == "deployment_name":
        del args["deployment_slot"]
    args[field] = value
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", args)
    assert rc != 0 and message in result["msg"] and field in result["msg"], out
    assert emulator.requests_made() == []


def _key_files(directory):
    found = []
    for path in pathlib.Path(directory).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if b"PRIVATE KEY" in data or b"BEGIN CERTIFICATE" in data:
                found.append(str(path))
    return found


def _wait_until_quiet(emulator, quiet=2.0, limit=45.0):
    """Wait until the emulator has seen no request for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        events = emulator.events("request")
        if not events or time.time() - events[-1]["time"] > quiet:
            return
        time.sleep(0.5)
    raise AssertionError("requests kept arriving after the async job was killed")


def test_no_key_material_left_after_success_failure_timeout_or_async_kill(emulator, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"AZURE_CERT_PATH": emulator.info["pfx_path"], "AZURE_CERT_PASSWORD": emulator.info["pfx_password"],
           "TMPDIR": str(scratch), "ANSIBLE_LOCAL_TEMP": str(scratch / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(scratch / "ansible-remote"), "ANSIBLE_ASYNC_DIR": str(scratch / "async")}
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", BASE, env=env)
    assert rc == 0, out
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", dict(BASE, role_instance="WebRole1_IN_9"), env=env)
    assert rc != 0
    emulator.timing(operation_seconds=60)
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", dict(BASE, role_instance="WebRole1_IN_1",
                                                                        wait_timeout=2), env=env)
    assert rc != 0 and result["timed_out"]
    emulator.reset()
    emulator.timing(operation_seconds=60)
    proc = subprocess.run([bin_path("ansible"), "localhost", "-m", "azure_classic.cloud_services.role_instance_reimage",
                           "-a", "cloud_service=contoso-web deployment_slot=staging role_instance=WebRole1_IN_2",
                           "-B", "3", "-P", "1"], env=emulator.env(**env), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)
    out = (proc.stdout + proc.stderr).lower()
    # ansible-core 2.19 says "Timeout exceeded", 2.16 "did not complete within the requested time".
    assert proc.returncode != 0 and ("timeout exceeded" in out or "did not complete within" in out), out
    _wait_until_quiet(emulator)  # the killed job must not go on polling into the next test
    assert _key_files(scratch) == []
    assert emulator.info["pfx_password"] not in proc.stdout + proc.stderr


def test_expired_certificate_is_refused_by_the_inventory_plugin_too(emulator, tmp_path):
    paths = make_files(tmp_path, emulator)
    config = tmp_path / "x.role_instances.yml"
    config.write_text("plugin: azure_classic.cloud_services.role_instances\n")
    proc = subprocess.run([bin_path("ansible-inventory"), "-i", str(config), "--list"],
                          env=emulator.env(AZURE_CERT_PATH=paths["expired"]), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert "expired on" in " ".join(proc.stderr.split()) and emulator.requests_made() == []


@pytest.mark.parametrize("args,message", [
    ({"api_version": "2014-10-01\n"}, "api_version '2014-10-01\\n' is not a date"),
    ({"api_version": "\uff12\uff10\uff11\uff14-10-01"}, "is not a date like 2014-10-01"),
    ({"management_url": "https://127.0.0.1:99999"}, "is not a valid URL"),
    ({"management_url": "https://127.0.0.1:abc"}, "is not a valid URL"),
    ({"management_url": "https://[::1"}, "is not a valid URL"),
    ({"management_url": "https://operator:hunter2@127.0.0.1/"}, "must not carry a user or password"),
    ({"management_url": "https://127.0.0.1/\nx"}, "without spaces or control characters"),
], ids=["version-newline", "version-fullwidth-digits", "port-range", "port-text", "open-bracket", "credentials",
        "newline"])
def test_connection_options_are_checked_whole_before_any_request(emulator, args, message):
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", dict(BASE, **args))
    assert rc != 0 and message in result.get("msg", ""), out
    assert "Traceback" not in out and emulator.requests_made() == []
    assert "hunter2" not in out, "a password in management_url is never echoed"


def test_a_publishsettings_management_url_is_checked_like_management_url(emulator, tmp_path):
    key, cert, _chain = pkcs12.load_key_and_certificates(pathlib.Path(emulator.info["pfx_path"]).read_bytes(),
                                                         emulator.info["pfx_password"].encode())
    blob = pkcs12.serialize_key_and_certificates(b"", key, cert, None, serialization.NoEncryption())
    http_url = emulator.url.replace("https://", "http://", 1)
    settings = tmp_path / "x.publishsettings"
    settings.write_text('<PublishData><PublishProfile SchemaVersion="2.0"><Subscription ServiceManagementUrl="%s" '
                        'Id="%s" Name="x" ManagementCertificate="%s"/></PublishProfile></PublishData>'
                        % (http_url, emulator.subscription_id, base64.b64encode(blob).decode()))
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", BASE,
                                env={"AZURE_CERT_PATH": str(settings), "AZURE_MANAGEMENT_URL": None})
    assert rc != 0, out
    assert "the management URL in publishsettings file %s" % settings in result["msg"]
    assert "must be an https:// URL" in result["msg"] and "Traceback" not in out
    assert emulator.requests_made() == []


def test_a_management_url_with_a_path_sends_nothing(emulator, tmp_path):
    """The service would answer every request to https://host:port/foo/<subscription>/... with 403, which reads like a
    certificate problem: modules, the roll and the inventory refuse such a URL before any request."""
    url = emulator.url + "/foo"
    expected = "management_url '%s' must be the endpoint's address alone, https://host[:port], without a path" % url
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", BASE, env={"AZURE_MANAGEMENT_URL": url})
    assert rc != 0 and expected in result.get("msg", ""), out
    rc, result, out = run_adhoc(emulator, "deployment_info", {"cloud_service": "contoso-web", "deployment_slot": "production"},
                                env={"AZURE_MANAGEMENT_URL": url + "/"})
    assert rc != 0 and "without a path" in result.get("msg", ""), out

    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  vars: {ansible_connection: local}\n  hosts:\n    web0: {cloud_service: contoso-web, "
                         "deployment_slot: production, role_instance: WebRole1_IN_0}\n")
    proc = run_playbook(emulator, "- hosts: all\n  gather_facts: false\n  roles:\n    - role: "
                        "azure_classic.cloud_services.rolling_reimage\n      vars: {rolling_reimage_state_path: %s}\n"
                        % (tmp_path / "roll.json"), tmp_path, inventory=inventory, env={"AZURE_MANAGEMENT_URL": url})
    assert proc.returncode != 0 and expected in " ".join(proc.output.split()), proc.output

    for listed in ("", "cloud_services: [contoso-web]\n"):  # listed services are read in threads: refused all the same
        config = tmp_path / "x.role_instances.yml"
        config.write_text("plugin: azure_classic.cloud_services.role_instances\n" + listed)
        proc = subprocess.run([bin_path("ansible-inventory"), "-i", str(config), "--list"],
                              env=emulator.env(AZURE_MANAGEMENT_URL=url, ANSIBLE_INVENTORY_UNPARSED_FAILED="true"),
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
        assert proc.returncode != 0 and expected in " ".join(proc.stderr.split()), proc.stderr
    assert emulator.requests_made() == []

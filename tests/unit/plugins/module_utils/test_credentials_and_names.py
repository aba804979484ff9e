"""Certificate formats and local input checks; nothing here talks to a service."""
import base64
import os
import ssl

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import check_connection_options
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._credentials import load_management_certificate
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import CredentialError, InputError

SUB = "3f2b3c1e-0000-4000-8000-000000000001"


def _pem(key, cert, password=None):
    enc = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _context():
    return ssl.create_default_context()


def test_pem_bundle_loads(tmp_path, keypair):
    path = tmp_path / "m.pem"
    path.write_bytes(_pem(*keypair))
    cert = load_management_certificate(str(path))
    assert cert.format == "pem"
    cert.load_into(_context())


@pytest.mark.parametrize("content,message", [
    (None, "does not exist"), (b"", "is empty"), (b"   \n", "is empty"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "holds no private key"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no certificate"),
])
def test_bad_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CredentialError) as info:
        load_management_certificate(str(path))
    assert message in info.value.message and str(path) in info.value.message


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "m.pem"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(CredentialError, match="cannot read"):
        load_management_certificate(str(path))


def test_encrypted_pem_needs_the_right_password(tmp_path, keypair):
    path = tmp_path / "enc.pem"
    path.write_bytes(_pem(*keypair, password="s3cret"))
    with pytest.raises(CredentialError, match="encrypted: set certificate_password"):
        load_management_certificate(str(path))
    with pytest.raises(CredentialError, match="certificate_password is wrong") as info:
        load_management_certificate(str(path), "nope").load_into(_context())
    assert "s3cret" not in info.value.message and "nope" not in info.value.message
    load_management_certificate(str(path), "s3cret").load_into(_context())


@pytest.mark.parametrize("memfd", [True, False])
def test_pfx_with_password(tmp_path, keypair, monkeypatch, memfd):
    key, cert = keypair
    path = tmp_path / "m.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"m", key, cert, None,
                                                           serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(CredentialError, match="password-protected"):
        load_management_certificate(str(path))
    with pytest.raises(CredentialError, match="certificate_password is wrong"):
        load_management_certificate(str(path), "wrong")
    import tempfile
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    if not memfd:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    created = []
    real_mkdtemp = tempfile.mkdtemp

    def spy(*args, **kwargs):
        path_made = real_mkdtemp(*args, **kwargs)
        created.append((path_made, os.stat(path_made).st_mode & 0o777))
        return path_made

    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    loaded = load_management_certificate(str(path), "pw")
    assert loaded.format == "pkcs12"
    loaded.load_into(_context())
    assert os.listdir(private_tmp) == [], "no key file left behind"
    if memfd and hasattr(os, "memfd_create"):
        assert created == [], "the key never touches a directory"
    else:
        assert [mode for made, mode in created] == [0o700]


@pytest.mark.parametrize("wrap", [0, 64])
def test_pfx_as_base64_text_as_an_awx_credential_holds_it(tmp_path, keypair, wrap):
    key, cert = keypair
    text = base64.b64encode(pkcs12.serialize_key_and_certificates(
        b"m", key, cert, None, serialization.BestAvailableEncryption(b"pw"))).decode()
    if wrap:
        text = "\n".join(text[i:i + wrap] for i in range(0, len(text), wrap))
    path = tmp_path / "credential_certificate"
    path.write_text(text + "\n")
    with pytest.raises(CredentialError, match="certificate_password is wrong"):
        load_management_certificate(str(path), "wrong")
    loaded = load_management_certificate(str(path), "pw")
    assert loaded.format == "pkcs12"
    loaded.load_into(_context())


def test_key_folders_left_by_a_killed_load_are_removed_and_nothing_else(tmp_path):
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._credentials import (
        KEY_FILE_NAME, KEY_FOLDER_PREFIX, remove_stale_key_folders)
    stale = tmp_path / (KEY_FOLDER_PREFIX + "stale")
    stale.mkdir(mode=0o700)
    (stale / KEY_FILE_NAME).write_bytes(b"encrypted key")
    running = tmp_path / (KEY_FOLDER_PREFIX + "running")  # another process is loading right now
    running.mkdir(mode=0o700)
    foreign = tmp_path / (KEY_FOLDER_PREFIX + "foreign")  # not what a load leaves: left alone
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    unrelated = tmp_path / "other_folder"
    unrelated.mkdir()
    old = os.stat(stale).st_mtime - 3600
    for folder in (stale, foreign, unrelated):
        os.utime(folder, (old, old))
    remove_stale_key_folders(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([running.name, foreign.name, unrelated.name])


def _publish_settings(tmp_path, subs):
    entries = []
    for sub_id, (key, cert) in subs:
        blob = base64.b64encode(pkcs12.serialize_key_and_certificates(b"", key, cert, None,
                                                                      serialization.NoEncryption())).decode()
        entries.append('<Subscription ServiceManagementUrl="https://management.example/" Id="%s" Name="n" '
                       'ManagementCertificate="%s" />' % (sub_id, blob))
    path = tmp_path / "a.publishsettings"
    path.write_text('<?xml version="1.0" encoding="utf-8"?><PublishData><PublishProfile SchemaVersion="2.0" '
                    'PublishMethod="AzureServiceManagementAPI">%s</PublishProfile></PublishData>' % "".join(entries))
    return path


def test_publishsettings_picks_the_subscription(tmp_path, keypair):
    other = "00000000-0000-4000-8000-0000000000aa"
    path = _publish_settings(tmp_path, [(other, keypair), (SUB, keypair)])
    with pytest.raises(CredentialError, match="holds 2 subscriptions"):
        load_management_certificate(str(path))
    with pytest.raises(CredentialError, match="has no subscription 11111111"):
        load_management_certificate(str(path), subscription_id="11111111-0000-4000-8000-000000000000")
    loaded = load_management_certificate(str(path), subscription_id=SUB.upper())
    assert loaded.subscription_id == SUB and loaded.management_url == "https://management.example"
    loaded.load_into(_context())
    single = load_management_certificate(str(_publish_settings(tmp_path, [(SUB, keypair)])))
    assert single.subscription_id == SUB


def test_expired_and_future_certificates_are_refused(tmp_path, cert_factory):
    for days, before, message in ((-1, -10, "expired on"), (30, 5, "not valid before")):
        key, cert = cert_factory(days_valid=days, not_before_days=before)
        path = tmp_path / ("c%d.pem" % days)
        path.write_bytes(_pem(key, cert))
        with pytest.raises(CredentialError, match=message):
            load_management_certificate(str(path))


@pytest.mark.parametrize("kind,value", [
    ("cloud_service", "a/b"), ("cloud_service", "-x"), ("cloud_service", "x" * 64), ("cloud_service", "a b"),
    ("deployment_name", ".."), ("deployment_name", "a..b"), ("deployment_name", "a?b"), ("deployment_name", "a#b"),
    ("role_instance", "a%2F"), ("role_instance", "a\nb"), ("role_instance", "caf\u00e9"), ("role_instance", "x" * 129),
    ("role_instance", ""),
])
def test_bad_names_are_refused(kind, value):
    with pytest.raises(InputError) as info:
        names.check_name(kind, value)
    assert kind in info.value.message


@pytest.mark.parametrize("value", ["production", "Staging", "PRODUCTION"])
def test_slots(value):
    assert names.check_slot(value) == value.lower()


def test_bad_slot_subscription_and_request_ids():
    with pytest.raises(InputError, match="not a slot"):
        names.check_slot("blue")
    with pytest.raises(InputError, match="not a GUID"):
        names.check_subscription_id("my-subscription")
    with pytest.raises(InputError, match="not an operation id"):
        names.check_request_id("1234")
    assert names.check_request_id("904B574F-8C60-B8CD-9906-593A7C53B6D5") == "904b574f8c60b8cd9906593a7c53b6d5"


@pytest.mark.parametrize("options,message", [
    ({"management_url": "http://management.core.windows.net"}, "must be an https://"),
    ({"api_version": "2009-10-01"}, "too old"), ({"api_version": "latest"}, "not a date"),
    ({"timeout": -1}, "timeout"), ({"timeout": 10 ** 6}, "timeout"), ({"retries": 99}, "retries"),
    ({"timeout": "30"}, "whole number"), ({"retries": True}, "whole number"),
    ({"api_version": 20141001}, "not a date"),
    ({"management_url": "https://m.test:0"}, "other than 0"),
    ({"management_url": "https://user@m.test"}, "must not carry a user"),
    ({"management_url": "https://m.test/?x=1"}, "query or fragment"),
    ({"management_url": "https://m.test:8443/foo"}, "without a path"),
    ({"management_url": "https://m.test//x/"}, "without a path"),
    # urllib.parse reads the first host, urllib3 (which requests connects with) the one before the backslash
    ({"management_url": "https://evil.example\\.management.core.windows.net"}, "backslash"),
    ({"management_url": "https://localhost:1\\[::1]:2"}, "backslash"),
    ({"management_url": "https://m\u00e9.test"}, "non-ASCII"),
    ({"management_url": "https://m%2etest/"}, "not a DNS name or an IP address"),
])
def test_connection_options_are_checked(options, message):
    base = {"api_version": "2014-10-01", "timeout": 60, "retries": 5}
    base.update(options)
    with pytest.raises(InputError, match=message):
        check_connection_options(base)


def test_a_management_url_is_the_endpoints_address_alone():
    base = {"api_version": "2014-10-01", "timeout": 60, "retries": 5}
    for url in ("https://m.test", "https://m.test/", "https://m.test:8443//"):
        assert check_connection_options(dict(base, management_url=url))["management_url"] == url.rstrip("/")


def test_a_management_url_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(InputError) as caught:
        check_connection_options({"api_version": "2014-10-01", "timeout": 60, "retries": 5,
                                  "management_url": "https://user:p@ss@m.test/"})
    assert "p@ss" not in str(caught.value) and "https://***@m.test/" in str(caught.value)


def test_a_url_the_parsers_read_differently_is_refused(monkeypatch):
    """Whatever the difference, not only backslashes: urllib3 is asked where it would connect."""
    import urllib3.util
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
    for url in ("https://management.core.windows.net", "https://127.0.0.1:8443/", "https://[::1]:8443", "https://m.test./"):
        assert names.check_url(url, "management_url") == url
    real = urllib3.util.parse_url
    monkeypatch.setattr(urllib3.util, "parse_url", lambda url: real(url.replace("m.test", "evil.test")))
    with pytest.raises(InputError, match="read differently"):
        names.check_url("https://m.test/", "management_url")

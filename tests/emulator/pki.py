"""Key material for the emulator: a private CA, a server certificate and management certificates.

Everything is generated once per work directory and reused, so a restart takes well under a second.
"""
import base64
import datetime
import hashlib
import json
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 2048
PKI_DIR = "pki"
MANIFEST = "pki.json"


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder, days):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))


def _ca(common_name):
    key = _new_key()
    builder = _validity(x509.CertificateBuilder(), 3650)
    cert = (
        builder.subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # keyUsage is mandatory for CAs under Python 3.13's strict X.509 checks.
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server(ca_key, ca_cert):
    import ipaddress
    key = _new_key()
    builder = _validity(x509.CertificateBuilder(), 825)
    cert = (
        builder.subject_name(_name("localhost")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def self_signed_client(common_name, not_before=None, not_after=None):
    """A management certificate as users make them: self-signed, for key exchange and client auth."""
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
        .not_valid_before(not_before or now - datetime.timedelta(days=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=730))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pem_bundle(key, cert):
    """Certificate followed by its unencrypted key, the format the legacy SDKs and libcloud read."""
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def thumbprint(cert):
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def publish_settings(subscriptions, management_url):
    """Schema 2.0 publishsettings; each subscription embeds a PKCS#12 with an empty password."""
    from xml.sax.saxutils import quoteattr
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<PublishData>\n',
             '  <PublishProfile SchemaVersion="2.0" PublishMethod="AzureServiceManagementAPI">\n']
    for sub_id, name, key, cert in subscriptions:
        blob = pkcs12.serialize_key_and_certificates(b"", key, cert, None, serialization.NoEncryption())
        parts.append("    <Subscription ServiceManagementUrl=%s Id=%s Name=%s ManagementCertificate=%s />\n" % (
            quoteattr(management_url), quoteattr(sub_id), quoteattr(name),
            quoteattr(base64.b64encode(blob).decode("ascii"))))
    parts.append("  </PublishProfile>\n</PublishData>\n")
    return "".join(parts)


def _write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def ensure_pki(workdir, subscription_id):
    """Create (or load) the emulator's key material under ``workdir/pki``; return a dict of paths."""
    pki_dir = os.path.join(workdir, PKI_DIR)
    manifest_path = os.path.join(pki_dir, MANIFEST)
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        if manifest.get("subscription_id") == subscription_id and all(
                os.path.exists(p) for k, p in manifest.items() if k.endswith("_path")):
            return manifest
    os.makedirs(pki_dir, mode=0o700, exist_ok=True)

    ca_key, ca_cert = _ca("Service Management Emulator CA")
    server_key, server_cert = _server(ca_key, ca_cert)
    mgmt_key, mgmt_cert = self_signed_client("Emulator Management Certificate")
    other_key, other_cert = self_signed_client("Unregistered Certificate")
    pfx_password = secrets.token_urlsafe(12)

    paths = {
        "ca_path": os.path.join(pki_dir, "ca.pem"),
        "server_cert_path": os.path.join(pki_dir, "server.pem"),
        "server_key_path": os.path.join(pki_dir, "server.key"),
        "certificate_path": os.path.join(pki_dir, "management.pem"),
        "certificate_der_path": os.path.join(pki_dir, "management.cer"),
        "pfx_path": os.path.join(pki_dir, "management.pfx"),
        "publish_settings_path": os.path.join(pki_dir, "emulator.publishsettings"),
        "unregistered_certificate_path": os.path.join(pki_dir, "unregistered.pem"),
    }
    _write(paths["ca_path"], ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["server_cert_path"], server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["server_key_path"], server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _write(paths["certificate_path"], pem_bundle(mgmt_key, mgmt_cert))
    _write(paths["certificate_der_path"], mgmt_cert.public_bytes(serialization.Encoding.DER), 0o644)
    _write(paths["pfx_path"], pkcs12.serialize_key_and_certificates(
        b"management", mgmt_key, mgmt_cert, None,
        serialization.BestAvailableEncryption(pfx_password.encode("utf-8"))))
    _write(paths["unregistered_certificate_path"], pem_bundle(other_key, other_cert))
    # The publishsettings URL is rewritten at start-up, when the port is known.
    _write(paths["publish_settings_path"], publish_settings(
        [(subscription_id, "Emulator", mgmt_key, mgmt_cert)], "https://127.0.0.1"))

    manifest = dict(paths, subscription_id=subscription_id, pfx_password=pfx_password,
                    registered_thumbprints=[thumbprint(mgmt_cert)],
                    trusted_client_certificates=[paths["certificate_path"], paths["unregistered_certificate_path"]])
    _write(manifest_path, json.dumps(manifest, indent=2))
    return manifest


def rewrite_publish_settings_url(manifest, management_url):
    """Point the publishsettings file at the running emulator, keeping its key material."""
    with open(manifest["certificate_path"], "rb") as handle:
        data = handle.read()
    cert = x509.load_pem_x509_certificate(data)
    key = serialization.load_pem_private_key(data, password=None)
    _write(manifest["publish_settings_path"], publish_settings(
        [(manifest["subscription_id"], "Emulator", key, cert)], management_url))

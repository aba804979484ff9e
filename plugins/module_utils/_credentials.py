# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Management certificates: PEM (certificate and key), PKCS#12 (.pfx/.p12, or its base64 text) and .publishsettings
files.

The certificate is loaded once into the client's ``ssl.SSLContext``. A PEM file is loaded from where
it is. Key material that has to be converted (PKCS#12, publishsettings) is written, with the key
encrypted under a one-time password, to an anonymous in-memory file (``memfd``), or where that does not
exist to a private directory (0700, file 0600) that is removed as soon as the context has read it. Only a
process killed during that moment leaves the directory behind (its key still encrypted under a password that
died with the process); the next load removes such directories.
"""

from __future__ import annotations

import base64
import datetime
import os
import secrets
import shutil
import ssl
import stat
import tempfile
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import CredentialError

# Where memfd is missing, the converted key passes through <tmp>/azure_classic_key_*/client.pem.
KEY_FOLDER_PREFIX = "azure_classic_key_"
KEY_FILE_NAME = "client.pem"
# A load takes milliseconds; a folder this old belongs to a process that was killed.
STALE_AFTER = 60


class ManagementCertificate:
    """What a certificate file yields: how to load it, and what a publishsettings file says besides."""

    def __init__(self, path, file_format, loader, subscription_id=None, management_url=None):
        self.path = path
        self.format = file_format
        self._loader = loader
        self.subscription_id = subscription_id
        self.management_url = management_url

    def load_into(self, context):
        self._loader(context)


def _read(path):
    if not path:
        raise CredentialError("no management certificate given: set management_certificate or AZURE_CERT_PATH")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise CredentialError("management certificate file %s does not exist" % path) from None
    except IsADirectoryError:
        raise CredentialError("management certificate %s is a directory, not a file" % path) from None
    except OSError as exc:
        raise CredentialError("cannot read management certificate file %s: %s" % (path, exc.strerror)) from None
    if not data.strip():
        raise CredentialError("management certificate file %s is empty" % path)
    return data


def _ssl_failure(path, exc, password_given=False):
    reason = getattr(exc, "reason", None) or str(exc)
    # OpenSSL reports a wrong passphrase as BAD_DECRYPT or, for PKCS#8 keys, as a generic "PEM lib" error.
    if "BAD_DECRYPT" in str(reason).upper() or "bad decrypt" in str(exc).lower() or (
            password_given and "PEM" in str(reason).upper()):
        return CredentialError("cannot decrypt the private key in %s: certificate_password is wrong" % path)
    if "KEY_VALUES_MISMATCH" in str(reason).upper():
        return CredentialError("the private key in %s does not belong to its certificate" % path)
    return CredentialError("cannot use the management certificate in %s: %s" % (path, reason))


def _check_validity(path, not_before, not_after):
    now = datetime.datetime.now(datetime.timezone.utc)
    if now > not_after:
        raise CredentialError("the management certificate in %s expired on %s; the service rejects expired "
                              "certificates (403): create and upload a new one" % (path, not_after.strftime("%Y-%m-%d")))
    if now < not_before:
        raise CredentialError("the management certificate in %s is not valid before %s"
                              % (path, not_before.strftime("%Y-%m-%d %H:%M UTC")))


def _cert_dates(cert):
    try:
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    except AttributeError:  # cryptography < 42
        return (cert.not_valid_before.replace(tzinfo=datetime.timezone.utc),
                cert.not_valid_after.replace(tzinfo=datetime.timezone.utc))


def _pem_dates(path, data):
    """The certificate's validity dates, without importing cryptography (module start-up stays lean)."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)  # CPython's own PEM decoder
    if decode is not None:
        try:
            decoded = decode(path)
            return (datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notBefore"]), datetime.timezone.utc),
                    datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), datetime.timezone.utc))
        except (ssl.SSLError, KeyError, ValueError, OSError):
            pass
    try:
        from cryptography import x509
        start = data.index(b"-----BEGIN CERTIFICATE-----")
        return _cert_dates(x509.load_pem_x509_certificate(data[start:]))
    except ImportError:
        far = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc), far
    except ValueError:
        raise CredentialError("the certificate in %s is not a valid PEM certificate" % path) from None


def _pem(path, data, password):
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise CredentialError("management certificate file %s holds no certificate (PEM without "
                              "'BEGIN CERTIFICATE')" % path)
    if b"PRIVATE KEY-----" not in data:
        raise CredentialError("management certificate file %s holds no private key: a PEM management "
                              "certificate must contain the certificate and its private key" % path)
    encrypted = b"ENCRYPTED" in data
    if encrypted and not password:
        raise CredentialError("the private key in %s is encrypted: set certificate_password" % path)
    _check_validity(path, *_pem_dates(path, data))

    def loader(context):
        try:
            # A password callable keeps OpenSSL from ever prompting on a terminal.
            context.load_cert_chain(path, password=lambda: (password or "").encode("utf-8"))
        except ssl.SSLError as exc:
            raise _ssl_failure(path, exc, password_given=encrypted) from None

    return ManagementCertificate(path, "pem", loader)


def remove_stale_key_folders(root=None, min_age=STALE_AFTER, clock=time.time):
    """Remove key folders that a killed load left behind: ours (owner, prefix, holding at most the key file)
    and older than ``min_age`` seconds, so a load running at this moment in another process keeps its own."""
    root = root or tempfile.gettempdir()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(KEY_FOLDER_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
                    or clock() - info.st_mtime < min_age
                    or not set(os.listdir(entry.path)) <= {KEY_FILE_NAME}):
                continue
            shutil.rmtree(entry.path)
        except OSError:
            continue


def _load_pem_bytes(context, pem_bytes, password):
    """Load a certificate+key PEM from memory into the context, leaving nothing behind on disk."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("azure-classic-client-cert", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem_bytes)
            context.load_cert_chain("/proc/self/fd/%d" % fd, password=password)
        finally:
            os.close(fd)
        return
    remove_stale_key_folders()
    private_dir = tempfile.mkdtemp(prefix=KEY_FOLDER_PREFIX)  # mode 0700
    try:
        file_path = os.path.join(private_dir, KEY_FILE_NAME)
        fd = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem_bytes)
        context.load_cert_chain(file_path, password=password)
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _pkcs12_loader(path, blob, password, what):
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError:
        raise CredentialError("reading %s needs the Python library 'cryptography'; install it on the "
                              "machine that runs the module, or convert the file to PEM" % what) from None
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(blob, password.encode("utf-8") if password else None)
    except ValueError:
        if password:
            raise CredentialError("cannot open %s: certificate_password is wrong, or it is not a PKCS#12 file"
                                  % path) from None
        raise CredentialError("cannot open %s: it is password-protected (set certificate_password) or it is not "
                              "a PKCS#12, PEM or publishsettings file" % path) from None
    if cert is None or key is None:
        raise CredentialError("%s must hold a certificate and its private key" % what)
    _check_validity(path, *_cert_dates(cert))
    one_time = secrets.token_bytes(24)
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time))

    def loader(context):
        try:
            _load_pem_bytes(context, pem, one_time)
        except ssl.SSLError as exc:
            raise _ssl_failure(path, exc) from None

    return loader


def _publish_settings(path, data, subscription_id):
    import xml.etree.ElementTree as ET  # only publishsettings files need it
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CredentialError("%s is not a valid publishsettings file: %s" % (path, exc)) from None
    profile = root.find("PublishProfile")
    if root.tag != "PublishData" or profile is None:
        raise CredentialError("%s is not a publishsettings file (no PublishData/PublishProfile)" % path)
    subscriptions = profile.findall("Subscription")
    if not subscriptions:
        raise CredentialError("publishsettings file %s lists no subscription" % path)
    if subscription_id:
        chosen = [s for s in subscriptions if (s.get("Id") or "").lower() == subscription_id.lower()]
        if not chosen:
            raise CredentialError("publishsettings file %s has no subscription %s (it has: %s)" % (
                path, subscription_id, ", ".join(s.get("Id") or "?" for s in subscriptions)))
    elif len(subscriptions) > 1:
        raise CredentialError("publishsettings file %s holds %d subscriptions: set subscription_id to pick one "
                              "(%s)" % (path, len(subscriptions), ", ".join(s.get("Id") or "?" for s in subscriptions)))
    else:
        chosen = subscriptions
    sub = chosen[0]
    # Schema 2.0 keeps certificate and URL on each Subscription; schema 1 on the PublishProfile.
    encoded = sub.get("ManagementCertificate") or profile.get("ManagementCertificate")
    if not encoded:
        raise CredentialError("publishsettings file %s has no ManagementCertificate for subscription %s"
                              % (path, sub.get("Id")))
    try:
        blob = base64.b64decode(encoded, validate=False)
    except ValueError:
        raise CredentialError("the ManagementCertificate in %s is not valid base64" % path) from None
    url = sub.get("ServiceManagementUrl") or profile.get("Url")
    # The embedded PKCS#12 of a real publishsettings file has an empty password.
    loader = _pkcs12_loader(path, blob, "", "publishsettings file %s" % path)
    return ManagementCertificate(path, "publishsettings", loader, (sub.get("Id") or "").lower() or None,
                                 url.rstrip("/") if url else None)


def load_management_certificate(path, password=None, subscription_id=None):
    """Read and check a management certificate file; the format is detected from its content."""
    data = _read(path)
    head = data.lstrip()[:512]
    if head.startswith(b"<") or b"<PublishData" in head:
        return _publish_settings(path, data, subscription_id)
    if b"-----BEGIN" in data:
        return _pem(path, data, password)
    blob = _base64_text(data)
    if blob is not None:  # a PKCS#12 file as base64, as a text field (an AWX credential) holds one
        return ManagementCertificate(path, "pkcs12", _pkcs12_loader(path, blob, password,
                                                                    "PKCS#12 (base64) file %s" % path))
    return ManagementCertificate(path, "pkcs12", _pkcs12_loader(path, data, password, "PKCS#12 file %s" % path))


def _base64_text(data):
    """The bytes that ``data`` holds as base64 text (line breaks allowed), or None when it is not such text (a
    PKCS#12 file itself is binary: its second byte already falls outside base64's alphabet)."""
    text = b"".join(data.split())
    try:
        return base64.b64decode(text, validate=True) if text else None
    except ValueError:
        return None

"""Unit-test fixtures: recordings location and freshly made certificates (no emulator needed)."""
import datetime
import os
import pathlib

import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Importing ansible.constants creates its local temp folder (~/.ansible/tmp by default): keep it out of the home.
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", tempfile.mkdtemp(prefix="unit-ansible-tmp-"))


def recordings_dir():
    env = os.environ.get("ASM_RECORDINGS")
    return pathlib.Path(env) if env else ROOT.parent / "shared" / "reference" / "asm" / "recordings"


@pytest.fixture
def recordings():
    path = recordings_dir()
    if not (path / "bodies").is_dir():
        pytest.skip("recordings not found at %s (set ASM_RECORDINGS)" % path)
    return path


def make_cert(days_valid=30, not_before_days=-1, key_bits=2048):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=not_before_days))
            .not_valid_after(now + datetime.timedelta(days=days_valid)).sign(key, hashes.SHA256()))
    return key, cert


@pytest.fixture(scope="session")
def keypair():
    return make_cert()


@pytest.fixture
def cert_factory():
    return make_cert

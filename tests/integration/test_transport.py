"""The client's HTTPS transport against the emulator over real mutual TLS: reuse, failure classes, threads."""
import concurrent.futures
import socket
import subprocess
import sys

import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import client as client_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.common import build_client
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.errors import (
    ServiceManagementError, TransportError)
from tests.helpers import ensure_collection_path

OPERATION = "/services/hostedservices/contoso-web/deploymentslots/production/roleinstances/WebRole1_IN_0"


def make_client(emulator, **overrides):
    options = {"subscription_id": emulator.subscription_id, "management_certificate": emulator.info["certificate_path"],
               "management_url": emulator.url, "ca_path": emulator.info["ca_path"], "validate_certs": True,
               "api_version": "2014-10-01", "timeout": 10, "retries": 0}
    options.update(overrides)
    return build_client(options)


def idle_sockets(client):
    return [conn.sock for idle in client.transport._idle.values() for conn in idle]  # pylint: disable=protected-access


def test_requests_reuse_one_connection(emulator):
    client = make_client(emulator)
    try:
        client.list_cloud_services()
        first = idle_sockets(client)
        client.get_deployment("contoso-web", slot="production")
        client.list_cloud_services()
        assert len(first) == 1 and idle_sockets(client) == first
    finally:
        client.close()
    assert idle_sockets(client) == []


def test_threads_share_the_client_safely(emulator):
    client = make_client(emulator)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lambda n: len(client.list_cloud_services()), range(60)))
        assert len(set(results)) == 1 and results[0] > 0
        assert 1 <= len(idle_sockets(client)) <= 8
    finally:
        client.close()
    assert len(emulator.requests_made("GET")) == 60


def test_nothing_listening_is_a_request_never_sent(emulator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(emulator, management_url="https://127.0.0.1:%d" % port)
    with pytest.raises(client_mod.ExchangeFailed) as info:
        client.transport.send("POST", "https://127.0.0.1:%d/x" % port, {}, b"")
    assert info.value.sent is False and info.value.tls is False
    with pytest.raises(TransportError) as err:
        client.request("POST", "/x")
    assert "cannot reach 127.0.0.1:%d after 1 attempts" % port in err.value.message


def test_an_untrusted_server_is_a_tls_failure_and_nothing_is_sent(emulator, tmp_path):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(open(emulator.info["certificate_path"]).read().split("-----END CERTIFICATE-----")[0]
                        + "-----END CERTIFICATE-----\n")
    client = make_client(emulator, ca_path=str(other_ca))
    with pytest.raises(TransportError) as err:
        client.request("POST", OPERATION, {"comp": "reimage"})
    assert "TLS with" in err.value.message and "certificate verify failed" in err.value.message
    assert emulator.requests_made() == []


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_dropped_connection_counts_as_sent(emulator, when):
    """Dropped before or after processing looks the same from the client: the service may have the request."""
    emulator.fault(method="POST", path="comp=reimage", times=1, action={"drop": when})
    client = make_client(emulator)
    try:
        with pytest.raises(client_mod.ExchangeFailed) as info:
            client.transport.send("POST", client._url(OPERATION, {"comp": "reimage"}),  # pylint: disable=protected-access
                                  dict(client.headers, **{"Content-Length": "0"}), b"")
        assert info.value.sent is True and info.value.tls is False
    finally:
        client.close()
    assert len(emulator.accepted()) == (1 if when == "after" else 0)


def test_the_connection_survives_error_answers(emulator):
    emulator.fault(method="GET", path="hostedservices$", times=1, action={"status": 503})
    client = make_client(emulator)
    try:
        with pytest.raises(ServiceManagementError) as info:
            client.list_cloud_services()
        assert info.value.http_status == 503
        kept = idle_sockets(client)
        client.list_cloud_services()
        assert len(kept) == 1 and idle_sockets(client) == kept
    finally:
        client.close()


def test_a_pem_client_imports_no_http_library_or_cryptography(emulator):
    """Start-up stays lean: a module authenticated with a PEM file needs neither requests/urllib3 nor cryptography."""
    code = ("import sys\n"
            "from ansible_collections.azure_classic.cloud_services.plugins.module_utils import actions, common\n"
            "client = common.build_client({'subscription_id': sys.argv[1], 'management_certificate': sys.argv[2],\n"
            "    'management_url': sys.argv[3], 'ca_path': sys.argv[4], 'api_version': '2014-10-01',\n"
            "    'timeout': 10, 'retries': 0})\n"
            "assert client.list_cloud_services()\n"
            "print(','.join(m for m in ('requests', 'urllib3', 'cryptography') if m in sys.modules) or 'none')\n")
    proc = subprocess.run([sys.executable, "-c", code, emulator.subscription_id, emulator.info["certificate_path"],
                           emulator.url, emulator.info["ca_path"]], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ensure_collection_path())}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none"

"""The client's HTTPS session against the emulator over real mutual TLS: reuse, failure classes, threads, redirects."""
import concurrent.futures
import socket
import ssl
import subprocess
import sys
import threading
import warnings

import pytest
import urllib3

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import build_client
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AmbiguousRequestError, ServiceManagementError, TransportError)
from tests.helpers import ensure_collection_path, run_adhoc

OPERATION = "/services/hostedservices/contoso-web/deploymentslots/production/roleinstances/WebRole1_IN_0"
REIMAGE = {"comp": "reimage"}


def make_client(emulator, **overrides):
    options = {"subscription_id": emulator.subscription_id, "management_certificate": emulator.info["certificate_path"],
               "management_url": emulator.url, "ca_path": emulator.info["ca_path"], "validate_certs": True,
               "api_version": "2014-10-01", "timeout": 10, "retries": 0, "use_proxy": False}
    options.update(overrides)
    client = build_client(options)
    client.sleep = lambda seconds: None  # retries here need no backoff
    return client


def pools(client):
    """The urllib3 connection pools of the client's session."""
    manager = client.session.get_adapter("https://").poolmanager
    return [manager.pools[key] for key in manager.pools.keys()]


def connections_made(client):
    return sum(pool.num_connections for pool in pools(client))


@pytest.fixture
def silent_port():
    """A port where TCP connects but nothing ever answers (the TLS handshake never completes)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_requests_reuse_one_connection(emulator):
    client = make_client(emulator)
    try:
        client.list_cloud_services()
        client.get_deployment("contoso-web", slot="production")
        client.list_cloud_services()
        assert connections_made(client) == 1
    finally:
        client.close()
    assert pools(client) == []
    assert len(emulator.requests_made("GET")) == 3


def test_threads_share_the_client_safely(emulator):
    client = make_client(emulator)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lambda n: len(client.list_cloud_services()), range(60)))
        assert len(set(results)) == 1 and results[0] > 0
        assert 1 <= connections_made(client) <= 12, "one pool shared by the threads, not a connection per request"
    finally:
        client.close()
    assert len(emulator.requests_made("GET")) == 60


def test_nothing_listening_is_a_request_never_sent_and_is_retried(emulator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(emulator, management_url="https://127.0.0.1:%d" % port, retries=2)
    with pytest.raises(TransportError) as err:
        client.request("POST", "/x")
    assert "cannot reach 127.0.0.1:%d after 3 attempts" % port in err.value.message
    assert "Connection refused" in err.value.message


def test_a_handshake_that_never_ends_is_a_request_never_sent(emulator, silent_port):
    client = make_client(emulator, management_url="https://127.0.0.1:%d" % silent_port, timeout=1)
    with pytest.raises(TransportError) as err:
        client.request("POST", "/x")
    assert not isinstance(err.value, AmbiguousRequestError), "the request never left: nothing is ambiguous"
    assert "cannot reach 127.0.0.1:%d after 1 attempts" % silent_port in err.value.message


def test_an_untrusted_server_is_a_tls_failure_and_nothing_is_sent(emulator, tmp_path):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(open(emulator.info["certificate_path"]).read().split("-----END CERTIFICATE-----")[0]
                        + "-----END CERTIFICATE-----\n")
    client = make_client(emulator, ca_path=str(other_ca), retries=3)
    with pytest.raises(TransportError) as err:
        client.request("POST", OPERATION, REIMAGE)
    assert "TLS with" in err.value.message and "certificate verify failed" in err.value.message
    assert connections_made(client) == 1, "a refused handshake is not retried"
    assert emulator.requests_made() == []


class ImpostorServer:
    """A TLS server on 127.0.0.2 with the emulator's own certificate (issued to localhost and 127.0.0.1): its chain
    is trusted, its name is wrong. Records whether a client certificate and any request bytes reached it."""

    def __init__(self, emulator):
        manifest = emulator.server.manifest
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(manifest["server_cert_path"], manifest["server_key_path"])
        self.context.verify_mode = ssl.CERT_OPTIONAL
        for path in manifest["trusted_client_certificates"]:
            self.context.load_verify_locations(cafile=path)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.2", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.client_certificates = []
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                raw, _address = self.listener.accept()
            except OSError:
                return
            raw.settimeout(5)
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    self.client_certificates.append(tls.getpeercert(binary_form=True))
                    self.received += tls.recv(65536)
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        self.listener.close()


def test_a_server_certificate_for_another_name_is_refused_before_the_request(emulator):
    impostor = ImpostorServer(emulator)
    client = make_client(emulator, management_url="https://127.0.0.2:%d" % impostor.port, retries=3)
    try:
        with pytest.raises(TransportError) as err:
            client.request("POST", OPERATION, REIMAGE)
    finally:
        client.close()
        impostor.close()
    assert "TLS with 127.0.0.2:%d failed" % impostor.port in err.value.message
    assert "127.0.0.2" in err.value.message.split("failed:", 1)[1], "the error names the mismatch"
    assert impostor.received == b"", "no request reached a server with another name"
    if not urllib3.__version__.startswith("1."):  # urllib3 1.x checks the name after the handshake
        assert not any(impostor.client_certificates), "the management certificate was not presented"


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_dropped_connection_counts_as_sent(emulator, when):
    """Dropped before or after processing looks the same from the client: the service may have the request."""
    emulator.fault(method="POST", path="comp=reimage", times=1, action={"drop": when})
    client = make_client(emulator, retries=3)
    try:
        with pytest.raises(AmbiguousRequestError) as err:
            client.request("POST", OPERATION, REIMAGE)
        assert "failed after the POST request was sent" in err.value.message
    finally:
        client.close()
    assert len(emulator.requests_made("POST")) == 1, "a POST whose answer was lost is never re-sent blindly"
    assert len(emulator.accepted()) == (1 if when == "after" else 0)


def test_a_read_timeout_after_sending_is_an_answer_lost(emulator):
    emulator.fault(method="POST", path="comp=reimage", times=1, action={"delay": 3})
    client = make_client(emulator, timeout=1, retries=3)
    try:
        with pytest.raises(AmbiguousRequestError):
            client.request("POST", OPERATION, REIMAGE)
    finally:
        client.close()
    assert len(emulator.accepted()) == 1 and len(emulator.requests_made("POST")) == 1


def test_a_get_whose_answer_was_lost_is_asked_again(emulator):
    emulator.fault(method="GET", path="hostedservices$", times=1, action={"drop": "after"})
    client = make_client(emulator, retries=1)
    try:
        assert client.list_cloud_services()
    finally:
        client.close()
    assert len(emulator.requests_made("GET")) == 2


def test_the_connection_survives_error_answers(emulator):
    emulator.fault(method="GET", path="hostedservices$", times=1, action={"status": 503})
    client = make_client(emulator)
    try:
        with pytest.raises(ServiceManagementError) as info:
            client.list_cloud_services()
        assert info.value.http_status == 503
        client.list_cloud_services()
        assert connections_made(client) == 1
    finally:
        client.close()


def test_a_redirect_to_the_same_host_on_another_port_is_followed(emulator):
    emulator.fault(method="GET", path="hostedservices$", times=1, action={"redirect": True})
    client = make_client(emulator)
    try:
        assert client.list_cloud_services()
    finally:
        client.close()
    assert [e["status"] for e in emulator.requests_made("GET")] == [307, 200]


def test_a_redirect_to_another_host_is_refused_and_the_target_sees_nothing(emulator):
    """The endpoint is reached as localhost; its redirect names 127.0.0.1, another host to the client."""
    emulator.fault(method="POST", path="comp=reimage", times=1, action={"redirect": True})
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0",
        "wait": False}, env={"AZURE_MANAGEMENT_URL": emulator.url.replace("127.0.0.1", "localhost")})
    assert rc != 0, out
    assert "refusing a redirect" in result["msg"] and "presented only to localhost" in result["msg"], out
    assert "Traceback" not in out
    assert [e["status"] for e in emulator.requests_made()] == [307], "nothing reached the redirect's target"
    assert emulator.accepted() == []


def test_validate_certs_false_warns_once_not_per_connection(emulator):
    warned = []
    with warnings.catch_warnings(record=True) as caught:
        client = build_client({"subscription_id": emulator.subscription_id, "validate_certs": False,
                               "management_certificate": emulator.info["certificate_path"],
                               "management_url": emulator.url, "api_version": "2014-10-01", "timeout": 10,
                               "retries": 0, "use_proxy": False}, warn=warned.append)
        try:
            client.list_cloud_services()
            client.list_cloud_services()
        finally:
            client.close()
    assert len(warned) == 1 and "validate_certs is false" in warned[0]
    assert [str(w.message) for w in caught if issubclass(w.category, urllib3.exceptions.InsecureRequestWarning)] == []


def test_a_pem_client_does_not_import_cryptography(emulator):
    """Start-up stays lean: a module authenticated with a PEM file does not load cryptography."""
    code = ("import sys\n"
            "from ansible_collections.azure_classic.cloud_services.plugins.module_utils import "
            "_module_base, _role_instance_operations, _connection\n"
            "client = _connection.build_client({'subscription_id': sys.argv[1], 'management_certificate': sys.argv[2],\n"
            "    'management_url': sys.argv[3], 'ca_path': sys.argv[4], 'api_version': '2014-10-01',\n"
            "    'timeout': 10, 'retries': 0})\n"
            "assert client.list_cloud_services()\n"
            "print(','.join(m for m in ('requests', 'urllib3', 'cryptography') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code, emulator.subscription_id, emulator.info["certificate_path"],
                           emulator.url, emulator.info["ca_path"]], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ensure_collection_path())}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "requests,urllib3"

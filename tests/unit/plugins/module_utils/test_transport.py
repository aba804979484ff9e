"""How requests reach the service: redirects, retries of failures, verify/timeouts/proxies on every request, the
adapter and its TLS context, answers bounded in size and encoding."""
import ssl

import pytest
import requests

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _client as client_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _transport as transport_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AmbiguousRequestError, InputError, ServiceManagementError, TransportError)

from tests.unit.plugins.module_utils.client_fakes import (
    SUB, RID, Raw, lost, NoCert, make_client, is_post)


def test_redirect_keeps_method_and_goes_to_location_on_the_same_host():
    c = make_client([(is_post, Raw(307, b"", {"Location": "https://example.test:8443/sub/path?comp=reimage"})),
                     (lambda m, u: u.startswith("https://example.test:8443"), Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.request("POST", "/x").request_id == RID
    assert [call[0] for call in c.stub.calls] == ["POST", "POST"]


def test_redirect_to_a_regional_management_host_is_followed():
    c = make_client([(is_post, Raw(308, b"", {"Location": "https://ussouth2.Management.Core.Windows.NET./sub/x"})),
                     (lambda m, u: u.startswith("https://ussouth2.management.core.windows.net"),
                      Raw(202, b"", {"x-ms-request-id": RID}))],
                    url="https://management.core.windows.net", redirect_hosts=("management.core.windows.net",))
    assert c.request("POST", "/x").request_id == RID


@pytest.mark.parametrize("location", [
    "https://other.test/sub/x", "https://127.0.0.1/sub/x", "https://management.core.windows.net.evil.test/x",
    "https://evilmanagement.core.windows.net/x", "https://example.test@evil.test/x",
    "https://proxyuser:s3cret@evil.test/x", "https://mystorage.blob.core.windows.net/x",
    "https://evil.test\\.management.core.windows.net/x", "https://evil.test:443\\@example.test/x",
    "https://example.test:443\\[::1]:443/x"])
def test_redirect_to_another_host_is_refused_before_anything_is_sent(location):
    c = make_client([(is_post, Raw(307, b"", {"Location": location}))],
                    url="https://example.test", redirect_hosts=("management.core.windows.net",))
    with pytest.raises(TransportError) as info:
        c.request("POST", "/x")
    assert "refusing a redirect" in info.value.message and "presented only to example.test" in info.value.message
    assert "s3cret" not in info.value.message
    assert len(c.stub.calls) == 1, "the client certificate went to no other host"


def test_requests_never_follows_a_redirect_by_itself():
    c = make_client([(is_post, Raw(307, b"", {"Location": "https://other.test/x"}))])
    with pytest.raises(TransportError):
        c.request("POST", "/x")
    assert [call[1] for call in c.stub.calls] == ["https://example.test/%s/x" % SUB]


def test_a_relative_redirect_stays_on_the_host():
    c = make_client([(is_post, Raw(307, b"", {"Location": "/elsewhere?comp=reimage"})),
                     (lambda m, u: u == "https://example.test/elsewhere?comp=reimage", Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.request("POST", "/x").request_id == RID


def test_redirect_to_plain_http_is_refused():
    c = make_client([(is_post, Raw(307, b"", {"Location": "http://evil.test/"}))])
    with pytest.raises(TransportError):
        c.request("POST", "/x")


def test_get_retries_connection_errors_and_gives_up():
    c = make_client([(lambda m, u: True, lost())] * 3, retries=2)
    with pytest.raises(TransportError) as info:
        c.request("GET", "/services/hostedservices")
    assert "after 3 attempts" in info.value.message


def test_a_post_never_sent_is_retried_like_a_get():
    c = make_client([(is_post, lost(sent=False)), (is_post, Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.request("POST", "/x").request_id == RID
    assert [call[0] for call in c.stub.calls] == ["POST", "POST"]


def test_a_refused_handshake_is_not_retried():
    refused = transport_mod.ExchangeFailed(OSError("certificate verify failed"), sent=False, refused=True, tls=True)
    c = make_client([(lambda m, u: True, refused)])
    with pytest.raises(TransportError) as info:
        c.request("GET", "/x")
    assert "TLS with example.test failed" in info.value.message and len(c.stub.calls) == 1


def test_response_headers_ignore_case():
    response = transport_mod.Response(202, [("X-MS-Request-ID", RID), ("Location", "https://x")], b"")
    assert response.request_id == RID and "location" in response.headers and response.headers["LOCATION"] == "https://x"


def test_other_redirections_are_errors_not_answers():
    c = make_client([(lambda m, u: True, Raw(302, b"", {"Location": "https://example.test/y"}))])
    with pytest.raises(ServiceManagementError) as info:
        c.request("GET", "/x")
    assert info.value.http_status == 302 and len(c.stub.calls) == 1


def _ca_file(tmp_path, keypair):
    from cryptography.hazmat.primitives import serialization
    path = tmp_path / "ca.pem"
    path.write_bytes(keypair[1].public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_verify_timeouts_and_proxies_are_explicit_on_every_request(monkeypatch, tmp_path, keypair):
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nowhere/bundle.pem")
    ca_path = _ca_file(tmp_path, keypair)
    c = make_client([(lambda m, u: True, Raw(200, b""))] * 2, ca_path=ca_path, timeout=30)
    c.request("GET", "/x")
    c.request("POST", "/y")
    for kwargs in c.stub.kwargs:
        assert kwargs["verify"] == ca_path and kwargs["timeout"] == (15, 30) and kwargs["proxies"] == {}
    assert c.session.trust_env is False
    assert c.stub.calls[1][3] in (b"", None) and c.stub.calls[1][2]["Content-Length"] == "0"


@pytest.mark.parametrize("validate_certs,ca_path,expected", [(True, None, True), (False, "/ca.pem", False)])
def test_verify_follows_validate_certs(validate_certs, ca_path, expected):
    c = make_client([(lambda m, u: True, Raw(200, b""))], validate_certs=validate_certs, ca_path=ca_path)
    c.request("GET", "/x")
    assert c.stub.kwargs[0]["verify"] is expected
    assert c.stub.kwargs[0]["timeout"] == (15, 60)


@pytest.mark.parametrize("content", [None, b"not a certificate"])
def test_an_unusable_ca_path_is_a_clear_error(tmp_path, content):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        client_mod.ServiceManagementClient(SUB, NoCert(), "https://example.test", ca_path=str(path))
    assert "ca_path %s cannot be used as a CA bundle" % path in info.value.message


def test_proxies_come_from_the_environment_unless_no_proxy_or_use_proxy_false(monkeypatch):
    for name in ("https_proxy", "ALL_PROXY", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "internal.test,.corp.test")
    answer = (lambda m, u: True, Raw(200, b""))
    c = make_client([answer])
    c.request("GET", "/x")
    assert c.stub.kwargs[0]["proxies"]["https"] == "http://user:pw@proxy.test:3128"
    c = make_client([answer], url="https://mgmt.corp.test")
    c.request("GET", "/x")
    assert c.stub.kwargs[0]["proxies"] == {}
    c = make_client([answer], use_proxy=False)
    c.request("GET", "/x")
    assert c.stub.kwargs[0]["proxies"] == {}


def test_plain_http_is_never_spoken():
    c = client_mod.ServiceManagementClient(SUB, NoCert(), "http://example.test", retries=3, sleep=lambda s: None)
    with pytest.raises(TransportError) as info:
        c.request("GET", "/x")
    assert "not an https URL" in info.value.message


def test_a_missing_requests_library_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(client_mod, "REQUESTS_IMPORT_ERROR", ImportError("No module named 'requests'"))
    with pytest.raises(InputError) as info:
        client_mod.ServiceManagementClient(SUB, NoCert(), "https://example.test")
    assert info.value.code == "MissingLibrary" and "'requests' is needed" in info.value.message


def _wrapped(cause):
    """A failure as requests raises it: ConnectionError around urllib3's error around the socket's."""
    try:
        try:
            raise cause
        except OSError as exc:
            raise requests.exceptions.ConnectionError(exc) from exc
    except requests.exceptions.ConnectionError as outer:
        return outer


def test_a_failure_while_connecting_was_not_sent_and_one_after_was():
    refused = _wrapped(ConnectionRefusedError(111, "Connection refused"))
    assert transport_mod._exchange_failure(refused, True, None).sent is False  # pylint: disable=protected-access
    reset = _wrapped(ConnectionResetError(104, "Connection reset by peer"))
    failure = transport_mod._exchange_failure(reset, False, None)  # pylint: disable=protected-access
    assert failure.sent is True and failure.refused is False


def test_a_proxy_refusing_connect_is_not_retried_but_a_proxy_error_is():
    proxy = "http://user:s3cret@proxy.test:3128"
    refused = transport_mod._exchange_failure(_wrapped(OSError("Tunnel connection failed: 403 Forbidden")), True, proxy)  # pylint: disable=protected-access
    assert (refused.sent, refused.refused, refused.proxy) == (False, True, "http://proxy.test:3128")
    gateway = transport_mod._exchange_failure(_wrapped(OSError("Tunnel connection failed: 502 Bad Gateway")), True, proxy)  # pylint: disable=protected-access
    assert (gateway.sent, gateway.refused) == (False, False)
    message = transport_mod._failure_message(refused, "https://example.test/x", 0)  # pylint: disable=protected-access
    assert "refused to connect to example.test" in message and "s3cret" not in message


def test_a_certificate_failure_is_tls_but_an_abrupt_end_is_not():
    bad = _wrapped(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    failure = transport_mod._exchange_failure(bad, True, None)  # pylint: disable=protected-access
    assert failure.tls and failure.refused and not failure.sent
    eof = _wrapped(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    failure = transport_mod._exchange_failure(eof, True, None)  # pylint: disable=protected-access
    assert not failure.tls and not failure.refused and not failure.sent


def test_credentials_in_urls_are_redacted():
    text = "cannot connect to proxy http://alice:pa%40ss@proxy.test:3128 or https://bob@other.test/x"
    assert transport_mod.redact_credentials(text) == "cannot connect to proxy http://***@proxy.test:3128 or https://***@other.test/x"
    failure = transport_mod.ExchangeFailed(OSError("via http://alice:pw@proxy.test:1"), sent=False,
                                           proxy="http://alice:pw@proxy.test:1")
    assert "pw" not in str(failure) and failure.proxy == "http://proxy.test:1"


class FakePool:
    cert_reqs = ca_certs = ca_cert_dir = "unset"


def test_the_adapter_hands_urllib3_the_context_and_loads_nothing_into_it():
    context = ssl.create_default_context()
    adapter = transport_mod.ManagementAdapter(context, pool_size=5)
    assert adapter.poolmanager.connection_pool_kw["ssl_context"] is context
    assert adapter.poolmanager.pool_classes_by_scheme["https"].__name__ == "_PhaseMarkingPool"
    proxied = adapter.proxy_manager_for("http://proxy.test:3128")
    assert proxied.connection_pool_kw["ssl_context"] is context
    assert proxied.pool_classes_by_scheme["https"].__name__ == "_PhaseMarkingPool"
    for verify, reqs in (("/etc/ca.pem", "CERT_REQUIRED"), (True, "CERT_REQUIRED"), (False, "CERT_NONE")):
        pool = FakePool()
        adapter.cert_verify(pool, "https://example.test/", verify, None)
        assert (pool.cert_reqs, pool.ca_certs, pool.ca_cert_dir) == (reqs, None, None)
    adapter.close()


def test_build_client_trusts_redirects_to_the_management_host_of_the_endpoints_cloud(tmp_path, keypair):
    from cryptography.hazmat.primitives import serialization
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import build_client
    key, cert = keypair
    path = tmp_path / "m.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    base = {"subscription_id": SUB, "management_certificate": str(path), "api_version": "2014-10-01",
            "timeout": 10, "retries": 0}
    cases = [({"cloud_environment": "AzureCloud"}, ("management.core.windows.net",)),
             ({"cloud_environment": "AzureChinaCloud"}, ("management.core.chinacloudapi.cn",)),
             ({"management_url": "https://management.core.usgovcloudapi.net/"}, ("management.core.usgovcloudapi.net",)),
             ({"cloud_environment": "AzureGermanCloud"}, ("management.core.cloudapi.de",)),
             ({"management_url": "https://127.0.0.1:8443"}, ())]
    for extra, hosts in cases:
        client = build_client(dict(base, **extra))
        assert client.redirect_hosts == hosts and client.use_proxy is True
        client.close()
    client = build_client(dict(base, use_proxy=False))
    assert client.use_proxy is False
    client.close()


HUGE = b"<" * (transport_mod.MAX_ANSWER_BYTES + 1)


@pytest.mark.parametrize("headers, body", [({}, HUGE), ({"Content-Length": str(len(HUGE))}, b""),
                                           ({"Content-Encoding": "gzip"}, None)])
def test_a_get_answered_too_large_is_refused_and_not_asked_again(headers, body):
    import gzip
    body = gzip.compress(HUGE) if body is None else body
    c = make_client([(lambda m, u: True, Raw(200, body, headers))] * 3)
    with pytest.raises(ServiceManagementError) as info:
        c.request("GET", "/x")
    assert info.value.code == "ResponseTooLarge" and info.value.http_status == 200
    assert len(c.stub.calls) == 1


def test_a_post_answered_too_large_is_a_lost_answer_never_re_sent_blindly():
    c = make_client([(is_post, Raw(202, HUGE, {"x-ms-request-id": RID}))])
    with pytest.raises(AmbiguousRequestError) as info:
        c.request("POST", "/x")
    assert info.value.code == "ResponseTooLarge" and len(c.stub.calls) == 1


@pytest.mark.parametrize("headers, body, words", [
    ({"Content-Encoding": "br"}, b"x", "encoded as 'br'"),
    ({"Content-Encoding": "gzip"}, b"not gzip", "corrupt"),
    ({"Content-Encoding": "gzip"}, None, "cut short"),
])
def test_an_answer_in_an_unreadable_encoding_is_a_bad_response(headers, body, words):
    import gzip
    body = gzip.compress(b"<HostedServices/>")[:-12] if body is None else body
    c = make_client([(lambda m, u: True, Raw(200, body, headers))])
    with pytest.raises(ServiceManagementError, match=words) as info:
        c.list_cloud_services()
    assert info.value.code == "BadResponse"


def test_identity_is_the_only_encoding_asked_for_and_gzip_sent_anyway_is_read():
    import gzip
    c = make_client([(lambda m, u: True, Raw(200, gzip.compress(b"<HostedServices/>"), {"Content-Encoding": "gzip"}))])
    assert c.list_cloud_services() == []
    assert c.stub.calls[0][2]["Accept-Encoding"] == "identity"
    assert c.stub.kwargs[0]["stream"] is True

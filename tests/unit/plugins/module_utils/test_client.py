"""Client behaviour with a stubbed transport: retries, redirects, 409 waits, lost answers, errors."""
import socket

import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import client as client_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.errors import (
    AmbiguousRequestError, ServiceManagementError, TransportError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.waiter import Deadline

SUB = "3f2b3c1e-0000-4000-8000-000000000001"
NS = 'xmlns="http://schemas.microsoft.com/windowsazure"'
RID = "a" * 32


def error_body(code, message):
    return ("<Error %s><Code>%s</Code><Message>%s</Message></Error>" % (NS, code, message)).encode()


def op_body(rid, status):
    extra = "<HttpStatusCode>200</HttpStatusCode>" if status == "Succeeded" else ""
    dashed = "%s-%s-%s-%s-%s" % (rid[:8], rid[8:12], rid[12:16], rid[16:20], rid[20:])
    return ("<Operation %s><ID>%s</ID><Status>%s</Status>%s</Operation>" % (NS, dashed, status, extra)).encode()


def Raw(status, body=b"", headers=None):  # pylint: disable=invalid-name
    return client_mod.Response(status, headers or {}, body)


def lost(sent=True):
    """The transport's failure when no answer came back (sent: the service may have the request)."""
    return client_mod.ExchangeFailed(ConnectionResetError("connection reset by peer"), sent=sent)


class StubTransport:
    """Answers requests from a script: a list of (predicate, answer) consumed in order of matching."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def send(self, method, url, headers, body=None):
        self.calls.append((method, url, headers, body))
        for index, (predicate, answer) in enumerate(self.script):
            if predicate(method, url):
                self.script.pop(index)
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise AssertionError("unexpected request %s %s" % (method, url))

    def close(self):
        pass


class NoCert:
    def load_into(self, context):
        pass


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def make_client(script, retries=3):
    clock = Clock()
    warnings = []
    c = client_mod.ServiceManagementClient(SUB, NoCert(), "https://example.test", retries=retries,
                                           sleep=clock.sleep, clock=clock, warn=warnings.append)
    c.transport = StubTransport(script)
    c.warnings = warnings
    c.fake_clock = clock
    return c


def is_post(method, url):
    return method == "POST"


def is_get_op(rid):
    return lambda method, url: method == "GET" and url.endswith("/operations/%s" % rid)


def test_post_retries_503_then_returns_request_id():
    c = make_client([(is_post, Raw(503, error_body("TooManyRequests", "Too many"))),
                     (is_post, Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_0", slot="production", deadline=Deadline(60)) == RID
    method, url, headers, body = c.transport.calls[-1]
    assert url == "https://example.test/%s/services/hostedservices/svc/deploymentslots/production/roleinstances/W_IN_0?comp=reimage" % SUB
    assert method == "POST" and body == b"" and headers["Content-Length"] == "0"
    assert headers["x-ms-version"] == "2014-10-01"


def test_retries_are_bounded_and_the_error_is_structured():
    c = make_client([(is_post, Raw(500, error_body("InternalError", "boom"), {"x-ms-request-id": "b" * 32}))] * 3,
                    retries=2)
    with pytest.raises(ServiceManagementError) as info:
        c.request("POST", "/x")
    assert info.value.to_dict() == {"code": "InternalError", "message": "boom", "http_status": 500,
                                    "request_id": "b" * 32}
    assert len(c.transport.calls) == 3


def test_backoff_grows_and_is_jittered():
    low = [client_mod.backoff_delay(n, rand=lambda: 0.0) for n in range(6)]
    high = [client_mod.backoff_delay(n, rand=lambda: 1.0) for n in range(6)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0] and high == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0]


def test_redirect_keeps_method_and_goes_to_location():
    c = make_client([(is_post, Raw(307, b"", {"Location": "https://other.test:8443/sub/path?comp=reimage"})),
                     (lambda m, u: u.startswith("https://other.test:8443"), Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.request("POST", "/x").request_id == RID
    assert [call[0] for call in c.transport.calls] == ["POST", "POST"]


def test_redirect_to_plain_http_is_refused():
    c = make_client([(is_post, Raw(307, b"", {"Location": "http://evil.test/"}))])
    with pytest.raises(TransportError):
        c.request("POST", "/x")


def test_conflict_waits_for_the_holder_then_retries():
    holder = "c" * 32
    conflict = error_body("ConflictError", "Windows Azure is currently performing an operation with x-ms-requestid "
                          "%s on this deployment that requires exclusive access." % holder)
    c = make_client([(is_post, Raw(409, conflict)), (is_get_op(holder), Raw(200, op_body(holder, "InProgress"))),
                     (is_get_op(holder), Raw(200, op_body(holder, "Succeeded"))),
                     (is_post, Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_1", deployment_name="d", deadline=Deadline(60, clock=c.fake_clock)) == RID


def test_conflict_beyond_the_budget_is_reported():
    holder = "c" * 32
    conflict = error_body("ConflictError", "... x-ms-requestid %s on this deployment ..." % holder)
    c = make_client([(is_post, Raw(409, conflict))] * 2 + [(is_get_op(holder), Raw(200, op_body(holder, "InProgress")))] * 50)
    with pytest.raises(ServiceManagementError) as info:
        c.role_instance_operation("reimage", "svc", "W_IN_1", slot="staging", deadline=Deadline(5, clock=c.fake_clock))
    assert info.value.code == "ConflictError" and "gave up waiting" in info.value.message


def test_lost_answer_adopts_the_listed_operation_and_never_resends():
    import time as _time
    started = _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime())
    listing = ('<SubscriptionOperationCollection %s><SubscriptionOperations><SubscriptionOperation>'
               '<OperationId>%s</OperationId><OperationName>ReimageRoleInstance</OperationName><OperationParameters>'
               '<OperationParameter><Name>roleInstanceName</Name><Value>W_IN_2</Value></OperationParameter>'
               '</OperationParameters><OperationStatus><Status>InProgress</Status></OperationStatus>'
               '<OperationStartedTime>%s</OperationStartedTime></SubscriptionOperation></SubscriptionOperations>'
               '</SubscriptionOperationCollection>' % (NS, RID, started)).encode()
    c = make_client([(is_post, lost()),
                     (lambda m, u: "/operations?" in u, Raw(200, listing))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_2", slot="production", deadline=Deadline(60)) == RID
    assert [call[0] for call in c.transport.calls] == ["POST", "GET"]
    assert "adopted" in c.warnings[0]


def test_lost_answer_not_listed_is_sent_again_once():
    empty = ('<SubscriptionOperationCollection %s><SubscriptionOperations/></SubscriptionOperationCollection>' % NS).encode()
    c = make_client([(is_post, client_mod.ExchangeFailed(TimeoutError("timed out"), sent=True)),
                     (lambda m, u: "/operations?" in u, Raw(200, empty)),
                     (lambda m, u: "/operations?" in u, Raw(200, empty)),
                     (is_post, Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_2", slot="production", deadline=Deadline(60)) == RID


def test_lost_answer_without_budget_is_ambiguous():
    empty = ('<SubscriptionOperationCollection %s><SubscriptionOperations/></SubscriptionOperationCollection>' % NS).encode()
    c = make_client([(is_post, lost()),
                     (lambda m, u: "/operations?" in u, Raw(200, empty)),
                     (lambda m, u: "/operations?" in u, Raw(200, empty))])
    with pytest.raises(AmbiguousRequestError) as info:
        c.role_instance_operation("reimage", "svc", "W_IN_2", slot="production", deadline=Deadline(0))
    assert "may have started" in info.value.message


def test_get_retries_connection_errors_and_gives_up():
    c = make_client([(lambda m, u: True, lost())] * 3, retries=2)
    with pytest.raises(TransportError) as info:
        c.request("GET", "/services/hostedservices")
    assert "after 3 attempts" in info.value.message


def test_wait_for_operation_times_out_distinctly():
    c = make_client([(is_get_op(RID), Raw(200, op_body(RID, "InProgress")))] * 100)
    with pytest.raises(WaitTimeoutError) as info:
        c.wait_for_operation(RID, Deadline(10, clock=c.fake_clock))
    assert info.value.request_id == RID and info.value.last_status == "InProgress"


def test_non_xml_error_is_still_structured():
    c = make_client([(lambda m, u: True, Raw(502, b"<html>bad gateway</html>"))], retries=0)
    with pytest.raises(ServiceManagementError) as info:
        c.request("GET", "/x")
    assert info.value.http_status == 502 and info.value.code == "HttpError502"


def test_names_are_quoted_in_paths():
    assert client_mod.deployment_path("svc", deployment_name="a b") == "/services/hostedservices/svc/deployments/a%20b"


def test_a_post_never_sent_is_retried_like_a_get():
    c = make_client([(is_post, lost(sent=False)), (is_post, Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.request("POST", "/x").request_id == RID
    assert [call[0] for call in c.transport.calls] == ["POST", "POST"]


def test_a_refused_handshake_is_not_retried():
    refused = client_mod.ExchangeFailed(OSError("certificate verify failed"), sent=False, tls=True)
    c = make_client([(lambda m, u: True, refused)])
    with pytest.raises(TransportError) as info:
        c.request("GET", "/x")
    assert "TLS with example.test failed" in info.value.message and len(c.transport.calls) == 1


def test_response_headers_ignore_case():
    response = client_mod.Response(202, [("X-MS-Request-ID", RID), ("Location", "https://x")], b"")
    assert response.request_id == RID and "location" in response.headers and response.headers["LOCATION"] == "https://x"


class FakeConnection:
    def __init__(self, sock):
        self.sock = sock


def test_an_idle_connection_closed_by_the_server_is_not_reused():
    ours, theirs = socket.socketpair()
    try:
        assert client_mod._still_open(FakeConnection(ours))  # pylint: disable=protected-access
        theirs.close()
        assert not client_mod._still_open(FakeConnection(ours))  # pylint: disable=protected-access
        assert not client_mod._still_open(FakeConnection(None))  # pylint: disable=protected-access
    finally:
        ours.close()


def test_the_transport_refuses_plain_http_before_connecting():
    transport = client_mod.KeepAliveTransport(None, 5)
    with pytest.raises(client_mod.ExchangeFailed) as info:
        transport.send("GET", "http://example.test/x", {})
    assert info.value.sent is False and "not an https URL" in str(info.value)

"""Client behaviour with the HTTPS adapter stubbed: retries, redirects, proxies, 409 waits, lost answers, errors."""
import io
import ssl

import pytest
import requests
import urllib3

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _client as client_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AcceptedRequestError, AmbiguousRequestError, InputError, ServiceManagementError, TransportError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import Deadline

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
    """The adapter's failure when no answer came back (sent: the service may have the request)."""
    return client_mod.ExchangeFailed(ConnectionResetError("connection reset by peer"), sent=sent)


class StubAdapter(requests.adapters.BaseAdapter):
    """Stands in for the HTTPS adapter: answers from a script of (predicate, answer) consumed in order of
    matching, and records every request with the keyword arguments requests handed it."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.calls = []
        self.kwargs = []

    def send(self, request, **kwargs):
        self.calls.append((request.method, request.url, request.headers, request.body))
        self.kwargs.append(kwargs)
        for index, (predicate, answer) in enumerate(self.script):
            if predicate(request.method, request.url):
                self.script.pop(index)
                if isinstance(answer, Exception):
                    raise answer
                response = requests.models.Response()
                response.status_code = answer.status
                response.headers = requests.structures.CaseInsensitiveDict(answer.headers)
                # What urllib3 hands requests with stream=True: a body not yet read.
                response.raw = urllib3.HTTPResponse(body=io.BytesIO(answer.body), headers=answer.headers,
                                                    status=answer.status, preload_content=False)
                response.url = request.url
                response.request = request
                return response
        raise AssertionError("unexpected request %s %s" % (request.method, request.url))

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


def make_client(script, retries=3, url="https://example.test", **kwargs):
    clock = Clock()
    warnings = []
    c = client_mod.ServiceManagementClient(SUB, NoCert(), url, retries=retries,
                                           sleep=clock.sleep, clock=clock, warn=warnings.append, **kwargs)
    c.stub = StubAdapter(script)
    c.session.mount("https://", c.stub)
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
    method, url, headers, body = c.stub.calls[-1]
    assert url == "https://example.test/%s/services/hostedservices/svc/deploymentslots/production/roleinstances/W_IN_0?comp=reimage" % SUB
    assert method == "POST" and not body and headers["Content-Length"] == "0"
    assert headers["x-ms-version"] == "2014-10-01"


def test_retries_are_bounded_and_the_error_is_structured():
    c = make_client([(is_post, Raw(500, error_body("InternalError", "boom"), {"x-ms-request-id": "b" * 32}))] * 3,
                    retries=2)
    with pytest.raises(ServiceManagementError) as info:
        c.request("POST", "/x")
    assert info.value.to_dict() == {"code": "InternalError", "message": "boom", "http_status": 500,
                                    "request_id": "b" * 32}
    assert len(c.stub.calls) == 3


def test_backoff_grows_and_is_jittered():
    low = [client_mod.backoff_delay(n, rand=lambda: 0.0) for n in range(6)]
    high = [client_mod.backoff_delay(n, rand=lambda: 1.0) for n in range(6)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0] and high == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0]


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


def test_conflict_waits_for_the_holder_then_retries():
    holder = "c" * 32
    conflict = error_body("ConflictError", "Windows Azure is currently performing an operation with x-ms-requestid "
                          "%s on this deployment that requires exclusive access." % holder)
    reboot = _listing((holder, "RebootRoleInstance", {"roleInstanceName": "W_IN_1"}, "Succeeded"))
    c = make_client([(is_post, Raw(409, conflict)), (is_get_op(holder), Raw(200, op_body(holder, "InProgress"))),
                     (is_get_op(holder), Raw(200, op_body(holder, "Succeeded"))),
                     (lambda m, u: "/operations?" in u, Raw(200, reboot)),
                     (is_post, Raw(202, b"", {"x-ms-request-id": RID}))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_1", deployment_name="d", deadline=Deadline(60, clock=c.fake_clock)) == RID
    assert [call[0] for call in c.stub.calls] == ["POST", "GET", "GET", "GET", "POST"], "a reboot held it: sent again"


def test_conflict_held_by_the_same_operation_on_the_same_instance_is_followed_not_repeated():
    holder = "c" * 32
    conflict = error_body("ConflictError", "... x-ms-requestid %s on this deployment ..." % holder)
    same = _listing((holder, "ReimageRoleInstance", {"roleInstanceName": "W_IN_1", "deploymentName": "D"},
                     "Succeeded"), started=_now_text())
    c = make_client([(is_post, Raw(409, conflict)), (is_get_op(holder), Raw(200, op_body(holder, "Succeeded"))),
                     (lambda m, u: "/operations?" in u, Raw(200, same))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_1", deployment_name="d",
                                     deadline=Deadline(60, clock=c.fake_clock)) == holder
    assert [call[0] for call in c.stub.calls] == ["POST", "GET", "GET"] and "another client started" in c.warnings[0]


def test_after_a_conflict_the_callers_recheck_decides_before_anything_is_sent_again():
    holder = "c" * 32
    conflict = error_body("ConflictError", "... x-ms-requestid %s on this deployment ..." % holder)
    asked = []
    c = make_client([(is_post, Raw(409, conflict)), (is_get_op(holder), Raw(200, op_body(holder, "Succeeded")))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_1", deployment_name="d",
                                     deadline=Deadline(60, clock=c.fake_clock),
                                     recheck=lambda h: asked.append(h) or "d" * 32) == "d" * 32
    assert asked == [holder] and [call[0] for call in c.stub.calls] == ["POST", "GET"]


def _now_text(offset=0):
    import time as _time
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(_time.time() + offset))


def _date_header(offset):
    import email.utils
    import time as _time
    return {"Date": email.utils.formatdate(_time.time() + offset, usegmt=True)}


@pytest.mark.parametrize("skew", [-200, 200, -3600, 3600])
def test_a_lost_answer_is_looked_up_on_the_services_clock(skew):
    """The service's clock ``skew`` seconds from ours: its Date header puts our send on its clock."""
    listing = _listing((RID, "ReimageRoleInstance", {"roleInstanceName": "W_IN_2"}, "InProgress"), started=_now_text(skew))
    c = make_client([(is_post, lost())] + [(lambda m, u: "/operations?" in u, Raw(200, listing, _date_header(skew)))] * 2)
    assert c.role_instance_operation("reimage", "svc", "W_IN_2", deployment_name="d", deadline=Deadline(60)) == RID
    assert [call[0] for call in c.stub.calls].count("POST") == 1
    assert abs(c.clock_offset - skew) < 3
    assert bool(c.warnings[:1] and "clock" in c.warnings[0]) == (abs(skew) > client_mod.CLOCK_WARN_SKEW)


def test_a_lost_answer_ignores_the_same_instance_of_the_other_deployment():
    other = _listing((RID, "ReimageRoleInstance", {"roleInstanceName": "W_IN_2", "deploymentName": "staging-dep"},
                      "InProgress"), started=_now_text())
    deployment = ('<Deployment %s><Name>prod-dep</Name><DeploymentSlot>Production</DeploymentSlot>'
                  '<RoleInstanceList/></Deployment>' % NS).encode()
    c = make_client([(is_post, lost()), (lambda m, u: "/operations?" in u, Raw(200, other)),
                     (lambda m, u: "/deploymentslots/production" in u and m == "GET", Raw(200, deployment)),
                     (lambda m, u: "/operations?" in u, Raw(200, other)),
                     (is_post, Raw(202, b"", {"x-ms-request-id": "b" * 32}))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_2", slot="production", deadline=Deadline(60)) == "b" * 32


@pytest.mark.parametrize("entry, why", [
    (("not-an-id", "ReimageRoleInstance", {"roleInstanceName": "W_IN_2"}, "InProgress"), "id"),
    ((RID, "ReimageRoleInstance", {"roleInstanceName": "W_IN_2"}, "InProgress"), "start time"),
])
def test_a_lost_answer_whose_history_entry_is_unusable_is_ambiguous_and_never_resent(entry, why):
    listing = _listing(entry, started=_now_text() if why == "id" else "")
    c = make_client([(is_post, lost()), (lambda m, u: "/operations?" in u, Raw(200, listing))])
    with pytest.raises(AmbiguousRequestError) as info:
        c.role_instance_operation("reimage", "svc", "W_IN_2", deployment_name="d", deadline=Deadline(60))
    assert "whose %s cannot be used" % why in info.value.message
    assert [call[0] for call in c.stub.calls] == ["POST", "GET"], "nothing sent again"


def test_a_history_that_repeats_its_continuation_token_or_never_ends_is_refused():
    def page(token):
        return ('<SubscriptionOperationCollection %s><SubscriptionOperations/><ContinuationToken>%s'
                '</ContinuationToken></SubscriptionOperationCollection>' % (NS, token)).encode()
    c = make_client([(lambda m, u: "/operations?" in u, Raw(200, page("t1")))] * 3)
    with pytest.raises(ServiceManagementError) as info:
        c.list_subscription_operations(0, 1)
    assert info.value.code == "BadResponse" and "given before" in info.value.message and len(c.stub.calls) == 2
    c = make_client([(lambda m, u: "/operations?" in u, Raw(200, page("t%d" % n))) for n in range(200)])
    with pytest.raises(ServiceManagementError) as info:
        c.list_subscription_operations(0, 1)
    assert "past %d pages" % client_mod.MAX_HISTORY_PAGES in info.value.message
    assert len(c.stub.calls) == client_mod.MAX_HISTORY_PAGES


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
    assert [call[0] for call in c.stub.calls] == ["POST", "GET"]
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
    assert [call[0] for call in c.stub.calls] == ["POST", "POST"]


def test_a_refused_handshake_is_not_retried():
    refused = client_mod.ExchangeFailed(OSError("certificate verify failed"), sent=False, refused=True, tls=True)
    c = make_client([(lambda m, u: True, refused)])
    with pytest.raises(TransportError) as info:
        c.request("GET", "/x")
    assert "TLS with example.test failed" in info.value.message and len(c.stub.calls) == 1


def test_response_headers_ignore_case():
    response = client_mod.Response(202, [("X-MS-Request-ID", RID), ("Location", "https://x")], b"")
    assert response.request_id == RID and "location" in response.headers and response.headers["LOCATION"] == "https://x"


def test_other_redirections_are_errors_not_answers():
    c = make_client([(lambda m, u: True, Raw(302, b"", {"Location": "https://example.test/y"}))])
    with pytest.raises(ServiceManagementError) as info:
        c.request("GET", "/x")
    assert info.value.http_status == 302 and len(c.stub.calls) == 1


# -- what every request hands requests ---------------------------------------------------------------------

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


# -- the retry policy ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent,refused,method,attempt,verdict", [
    (False, False, "POST", 0, "retry"),       # never left: safe to send again, whatever the method
    (False, False, "POST", 3, "give up"),     # ... but only so many times
    (False, True, "GET", 0, "give up"),       # a refused handshake or CONNECT: asking again changes nothing
    (True, False, "GET", 0, "retry"),         # a GET whose answer was lost is simply asked again
    (True, False, "POST", 0, "ambiguous"),    # a POST whose answer was lost may have started the operation
    (True, True, "POST", 0, "ambiguous"),     # even when TLS broke after it was sent
])
def test_retry_policy_for_failures(sent, refused, method, attempt, verdict):
    failure = client_mod.ExchangeFailed(OSError("x"), sent=sent, refused=refused)
    assert client_mod.RetryPolicy(3).after_failure(failure, method, attempt) == verdict


def test_retry_policy_for_answers():
    policy = client_mod.RetryPolicy(2)
    assert [policy.after_answer(s, 0) for s in (500, 503, 409, 404, 502, 200)] == ["retry", "retry"] + ["give up"] * 4
    assert policy.after_answer(503, 2) == "give up"


# -- how the adapter classifies failures ----------------------------------------------------------------------

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
    assert client_mod._exchange_failure(refused, True, None).sent is False  # pylint: disable=protected-access
    reset = _wrapped(ConnectionResetError(104, "Connection reset by peer"))
    failure = client_mod._exchange_failure(reset, False, None)  # pylint: disable=protected-access
    assert failure.sent is True and failure.refused is False


def test_a_proxy_refusing_connect_is_not_retried_but_a_proxy_error_is():
    proxy = "http://user:s3cret@proxy.test:3128"
    refused = client_mod._exchange_failure(_wrapped(OSError("Tunnel connection failed: 403 Forbidden")), True, proxy)  # pylint: disable=protected-access
    assert (refused.sent, refused.refused, refused.proxy) == (False, True, "http://proxy.test:3128")
    gateway = client_mod._exchange_failure(_wrapped(OSError("Tunnel connection failed: 502 Bad Gateway")), True, proxy)  # pylint: disable=protected-access
    assert (gateway.sent, gateway.refused) == (False, False)
    message = client_mod._failure_message(refused, "https://example.test/x", 0)  # pylint: disable=protected-access
    assert "refused to connect to example.test" in message and "s3cret" not in message


def test_a_certificate_failure_is_tls_but_an_abrupt_end_is_not():
    bad = _wrapped(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    failure = client_mod._exchange_failure(bad, True, None)  # pylint: disable=protected-access
    assert failure.tls and failure.refused and not failure.sent
    eof = _wrapped(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    failure = client_mod._exchange_failure(eof, True, None)  # pylint: disable=protected-access
    assert not failure.tls and not failure.refused and not failure.sent


def test_credentials_in_urls_are_redacted():
    text = "cannot connect to proxy http://alice:pa%40ss@proxy.test:3128 or https://bob@other.test/x"
    assert client_mod.redact_credentials(text) == "cannot connect to proxy http://***@proxy.test:3128 or https://***@other.test/x"
    failure = client_mod.ExchangeFailed(OSError("via http://alice:pw@proxy.test:1"), sent=False,
                                        proxy="http://alice:pw@proxy.test:1")
    assert "pw" not in str(failure) and failure.proxy == "http://proxy.test:1"


# -- the adapter and the SSL context --------------------------------------------------------------------------

class FakePool:
    cert_reqs = ca_certs = ca_cert_dir = "unset"


def test_the_adapter_hands_urllib3_the_context_and_loads_nothing_into_it():
    context = ssl.create_default_context()
    adapter = client_mod.ManagementAdapter(context, pool_size=5)
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


def test_the_rate_limiter_spaces_requests_from_every_thread_evenly():
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._client import RateLimiter
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)

    limiter = RateLimiter(20, clock=lambda: now[0], sleep=sleep)
    for _request in range(5):
        limiter.acquire()
    step = 1 / 18.0
    assert slept == pytest.approx([step, 2 * step, 3 * step, 4 * step]), \
        "the first goes at once, then one every 1/18 s (90 % of the ceiling, room for arrival jitter)"
    assert sum(1 for k in range(100) if k * step < 1.0) <= 20, "no second ever holds more than the ceiling"
    now[0] = 10.0
    slept.clear()
    limiter.acquire()
    assert slept == [], "an idle limiter lets the next request go at once"


def _listing(*operations, started="2026-11-27T20:00:00Z"):
    """A List Subscription Operations body; each operation is (id, name, {parameter: value}, status)."""
    entries = []
    for rid, name, params, status in operations:
        entries.append('<SubscriptionOperation><OperationId>%s</OperationId><OperationName>%s</OperationName>'
                       '<OperationParameters>%s</OperationParameters><OperationStatus><Status>%s</Status>'
                       '</OperationStatus><OperationStartedTime>%s</OperationStartedTime>'
                       '</SubscriptionOperation>' % (rid, name, "".join(
                           '<OperationParameter><Name>%s</Name><Value>%s</Value></OperationParameter>' % item
                           for item in params.items()), status, started))
    return ('<SubscriptionOperationCollection %s><SubscriptionOperations>%s</SubscriptionOperations>'
            '</SubscriptionOperationCollection>' % (NS, "".join(entries))).encode()


def test_the_operation_history_names_each_operation_whatever_the_case_of_its_parameters(monkeypatch):
    monkeypatch.setattr(client_mod.time, "time", lambda: 1_800_000_000.0)
    body = _listing((RID, "ReimageRoleInstance", {"RoleInstanceName": "W_IN_0", "DEPLOYMENTNAME": "Prod"}, "InProgress"),
                    ("b" * 32, "RebuildRoleInstance", {"roleInstanceName": "W_IN_1"}, "Succeeded"),
                    ("c" * 32, "UpdateDeploymentStatus", {}, "Succeeded"))
    c = make_client([(lambda m, u: "/operations?" in u, Raw(200, body))])
    history = c.operation_history("svc", 1_700_000_000)
    assert [(op["kind"], op["instance"], op["deployment"]) for op in history] == [
        ("reimage", "w_in_0", "prod"), ("rebuild", "w_in_1", ""), (None, "", "")]
    import calendar
    assert history[0]["started"] == history[2]["started"] == calendar.timegm((2026, 11, 27, 20, 0, 0))
    url = c.stub.calls[0][1]
    # The window ends a day ahead: a controller clock behind the service's must not hide an operation.
    assert "EndTime=2027-01-16T08%3A00%3A00Z" in url and "ObjectIdFilter=%2F" + SUB in url


def test_a_lost_answer_is_found_in_the_history_whatever_the_case_of_its_parameters():
    import time
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = _listing((RID, "reimageroleinstance", {"ROLEINSTANCENAME": "w_in_2"}, "InProgress"), started=now)
    c = make_client([(is_post, lost()), (lambda m, u: "/operations?" in u, Raw(200, body))])
    assert c.role_instance_operation("reimage", "svc", "W_IN_2", slot="production", deadline=Deadline(60)) == RID
    assert [call[0] for call in c.stub.calls] == ["POST", "GET"], "adopted, never sent again"


def test_a_request_id_that_is_not_one_never_reaches_a_url():
    c = make_client([(is_post, Raw(202, b"", {"x-ms-request-id": "../../subscriptions\x7f" + "z" * 200}))])
    with pytest.raises(AcceptedRequestError) as info:
        c.role_instance_operation("reimage", "svc", "W_IN_0", slot="production", deadline=Deadline(60))
    assert info.value.code == "BadRequestId" and len(c.stub.calls) == 1
    assert info.value.raw_request_id.startswith("../../subscriptions\\x7fzzz") and len(info.value.raw_request_id) < 100


def test_an_accepted_request_without_an_id_is_still_accepted():
    c = make_client([(is_post, Raw(202, b""))])
    with pytest.raises(AcceptedRequestError) as info:
        c.role_instance_operation("reimage", "svc", "W_IN_0", slot="production", deadline=Deadline(60))
    assert info.value.code == "MissingRequestId" and info.value.raw_request_id is None


HUGE = b"<" * (client_mod.MAX_ANSWER_BYTES + 1)


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


def test_a_bad_answer_names_its_status_and_request_id():
    c = make_client([(lambda m, u: True, Raw(200, b"<html/>", {"x-ms-request-id": RID}))])
    with pytest.raises(ServiceManagementError) as info:
        c.get_deployment("svc", slot="production")
    assert (info.value.code, info.value.http_status, info.value.request_id) == ("BadResponse", 200, RID)

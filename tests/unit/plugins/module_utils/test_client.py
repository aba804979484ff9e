"""The client's API operations, the service's errors and clock, and never re-sending blindly (409s, lost answers)."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _client as client_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _transport as transport_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AcceptedRequestError, AmbiguousRequestError, ServiceManagementError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import Deadline

from tests.unit.plugins.module_utils.client_fakes import (
    SUB, NS, RID, error_body, op_body, Raw, lost, make_client, is_post, is_get_op)


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
    c = make_client([(is_post, transport_mod.ExchangeFailed(TimeoutError("timed out"), sent=True)),
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


def test_a_bad_answer_names_its_status_and_request_id():
    c = make_client([(lambda m, u: True, Raw(200, b"<html/>", {"x-ms-request-id": RID}))])
    with pytest.raises(ServiceManagementError) as info:
        c.get_deployment("svc", slot="production")
    assert (info.value.code, info.value.http_status, info.value.request_id) == ("BadResponse", 200, RID)

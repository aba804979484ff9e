"""A hostile or broken endpoint gets nothing: real module runs against misbehaving HTTPS servers on 127.0.0.1.

URLs read two ways reach no other host; answers that are not the service's XML are structured failures (and an
accepted reimage still reports changed and its id); answers are bounded in size, memory and time."""
import gzip
import time

import pytest

from tests.e2e.test_rolling_role import inventory, play
from tests.helpers import run_adhoc, run_playbook
from tests.hostile_server import PEAK_RSS_WRAPPER, HostileServer, answer, peak_rss_mib, streamed

NS = 'xmlns="http://schemas.microsoft.com/windowsazure"'
RID = "0123456789abcdef0123456789abcdef"
INFO = {"cloud_service": "contoso-web", "deployment_slot": "production"}
REIMAGE = dict(INFO, role_instance="WebRole1_IN_0")
DEPLOYMENT = ('<Deployment %s><Name>contoso-web-prod</Name><DeploymentSlot>Production</DeploymentSlot>'
              '<RoleInstanceList><RoleInstance><RoleName>WebRole1</RoleName><InstanceName>WebRole1_IN_0</InstanceName>'
              '<InstanceStatus>ReadyRole</InstanceStatus></RoleInstance></RoleInstanceList></Deployment>' % NS).encode()
MIB = 1024 * 1024


@pytest.fixture
def servers(emulator):
    """Starts HostileServers for a test (``servers(respond)``) and stops them after it."""
    started = []

    def start(respond=None):
        server = HostileServer(emulator, respond)
        started.append(server)
        return server
    yield start
    for server in started:
        server.close()


def run(emulator, server_url, module, args, **kwargs):
    return run_adhoc(emulator, module, args, env={"AZURE_MANAGEMENT_URL": server_url}, **kwargs)


def assert_clean_failure(rc, result, out, code):
    assert rc != 0, out
    assert "Traceback" not in out and "MODULE FAILURE" not in out, out
    assert result["error"]["code"] == code, out


# -- URLs read two ways -----------------------------------------------------------------------------------------

def test_a_redirect_read_two_ways_reaches_no_other_host(emulator, servers):
    """urllib reads host 127.0.0.1 (the endpoint) in the Location; urllib3 would connect to localhost:<other>."""
    other = servers(lambda request: answer("200 OK", DEPLOYMENT, {"x-ms-request-id": RID}))
    endpoint = servers(lambda request: answer("307 Temporary Redirect", headers={
        "Location": "https://localhost:%d\\@127.0.0.1:%d%s" % (other.port, endpoint.port, request.target)}))
    rc, result, out = run(emulator, endpoint.url, "deployment_info", INFO)
    assert rc != 0, out
    assert "refusing a redirect" in result["msg"] and "backslash" in result["msg"], out
    assert len(endpoint.requests) == 1
    assert other.connections == 0, "the other host got no connection, no request and no certificate"


def test_a_management_url_read_two_ways_is_refused_before_any_request(emulator, servers):
    """urllib reads host ::1 in it; urllib3 would connect to localhost:<other>."""
    other = servers(lambda request: answer("200 OK", DEPLOYMENT, {"x-ms-request-id": RID}))
    rc, result, out = run(emulator, "https://localhost:%d\\[::1]:%d" % (other.port, other.port), "deployment_info", INFO)
    assert rc != 0, out
    assert "management_url" in result["msg"] and "backslash" in result["msg"], out
    assert other.connections == 0


# -- answers that are not the service's XML ---------------------------------------------------------------------

MALFORMED = {
    "control character": ("operation_status", {"request_id": RID, "wait": False}, (
        '<Operation %s><ID>%s</ID><Status>Failed</Status><HttpStatusCode>500</HttpStatusCode><Error><Code>X</Code>'
        '<Message>bad \x01</Message></Error></Operation>' % (NS, RID)).encode()),
    "login page": ("deployment_info", INFO, b"<!DOCTYPE html><html><body><form>Sign in</form></body></html>"),
    "xhtml page": ("deployment_info", INFO, b"<html><body><p>Sign in</p></body></html>"),
    "error root with 200": ("deployment_info", INFO, ("<Error %s><Code>InternalError</Code><Message>x</Message></Error>"
                                                      % NS).encode()),
    "instance without a name": ("role_instance_reimage", dict(REIMAGE, _ansible_check_mode=True),
                                DEPLOYMENT.replace(b"<InstanceName>WebRole1_IN_0</InstanceName>", b"")),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_answer_is_a_structured_failure(emulator, servers, case):
    module, args, body = MALFORMED[case]
    server = servers(lambda request: answer("200 OK", body, {"x-ms-request-id": RID}))
    extra = ("--check",) if args.pop("_ansible_check_mode", False) else ()
    rc, result, out = run(emulator, server.url, module, dict(args), extra=extra)
    assert_clean_failure(rc, result, out, "BadResponse")
    assert result["error"]["http_status"] == 200 and result["error"]["request_id"] == RID, out
    assert [request.method for request in server.requests] == ["GET"]


def test_an_accepted_reimage_whose_next_answer_is_garbage_reports_changed_and_its_id(emulator, servers):
    def respond(request):
        if request.method == "POST":
            return answer("202 Accepted", headers={"x-ms-request-id": RID})
        return answer("200 OK", b"<html><body>Sign in</body></html>")
    server = servers(respond)
    rc, result, out = run(emulator, server.url, "role_instance_reimage", REIMAGE)
    assert_clean_failure(rc, result, out, "BadResponse")
    assert result["changed"] is True and result["request_id"] == RID, out
    assert [request.method for request in server.requests] == ["POST", "GET"], "the reimage was sent once"


def test_an_accepted_reimage_with_a_malformed_request_id_reports_changed(emulator, servers):
    server = servers(lambda request: answer("202 Accepted", headers={"x-ms-request-id": "<b>" + "z" * 300}))
    rc, result, out = run(emulator, server.url, "role_instance_reimage", REIMAGE)
    assert_clean_failure(rc, result, out, "BadRequestId")
    assert result["changed"] is True and result["request_id"] is None, out
    assert result["request_id_raw"].startswith("<b>zzz") and len(result["request_id_raw"]) < 100, out
    assert len(server.requests) == 1


def test_a_malformed_answer_refuses_the_roll_cleanly(emulator, servers, tmp_path):
    """The roll's planner reads every deployment first: an answer it cannot read stops it with the code, not a crash."""
    server = servers(lambda request: answer("200 OK", b"<html><body>Sign in</body></html>", {"x-ms-request-id": RID}))
    proc = run_playbook(emulator, play(tmp_path), tmp_path, inventory=inventory(tmp_path, instances=("WebRole1_IN_0",)),
                        env={"AZURE_MANAGEMENT_URL": server.url})
    assert proc.returncode != 0, proc.output
    assert "BadResponse" in proc.output and "Traceback" not in proc.output, proc.output
    assert server.requests and all(request.method == "GET" for request in server.requests), "nothing was reimaged"


# -- answers bounded in size and time ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gzip_bomb():
    return gzip.compress(b"\0" * (100 * MIB), 9)


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_huge_answer_is_refused_in_bounded_memory(emulator, servers, gzip_bomb, kind):
    if kind == "plain":  # 100 MiB without a length: only reading tells its size
        reply = streamed(answer("200 OK", length=False), b"<" * MIB, 100)
    else:  # about 100 KiB that decodes to 100 MiB, although identity was asked for
        reply = answer("200 OK", gzip_bomb, {"Content-Encoding": "gzip"})
    server = servers(lambda request: reply)
    rc, result, out = run(emulator, server.url, "deployment_info", INFO, wrapper=PEAK_RSS_WRAPPER)
    assert_clean_failure(rc, result, out, "ResponseTooLarge")
    assert peak_rss_mib(out) < 150, out
    assert server.requests[0].headers.get("Accept-Encoding") == "identity"


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_drip_fed_answer_ends_within_the_timeout(emulator, servers, part):
    head = answer("200 OK", b"x" * 100)[:-100]
    if part == "headers":
        reply = streamed(b"", b"H", 30, pause=1.0)
    else:
        reply = streamed(head, b"x", 30, pause=1.0)
    server = servers(lambda request: reply)
    started = time.monotonic()
    rc, result, out = run(emulator, server.url, "deployment_info", dict(INFO, timeout=5, retries=0))
    elapsed = time.monotonic() - started
    assert rc != 0 and "no complete answer within 5 seconds" in result["msg"], out
    assert elapsed < 5 + 10, "the module ran %.1f s" % elapsed


def test_a_health_url_that_drips_stops_the_roll_within_its_timeout(emulator, servers, tmp_path):
    """The health gate's GET is bounded in total time too: a URL answering a byte a second cannot hold a round. It
    answers at once when checked before the roll, and drips after."""
    asked = []

    def respond(request):
        asked.append(request)
        return answer("200 OK") if len(asked) == 1 else streamed(b"", b"H", 60, pause=1.0)

    server = servers(respond)
    started = time.monotonic()
    proc = run_playbook(emulator, play(tmp_path, rolling_reimage_health_url=server.url + "/health",
                                       rolling_reimage_health_ca_path=emulator.info["ca_path"],
                                       rolling_reimage_health_timeout=3), tmp_path,
                        inventory=inventory(tmp_path, instances=("WebRole1_IN_0", "WebRole1_IN_1")))
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    assert "gave no complete answer in 3s within 3s" in " ".join(proc.output.split())
    assert len(emulator.accepted()) == 1, "the roll stopped after its first round"
    assert elapsed < 45, "the round was held %.0f s" % elapsed


def _listing(entry, token=None):
    return ('<SubscriptionOperationCollection %s><SubscriptionOperations>%s</SubscriptionOperations>%s'
            '</SubscriptionOperationCollection>' % (NS, entry, "<ContinuationToken>%s</ContinuationToken>" % token
                                                    if token else "")).encode()


def _reimage_entry(operation_id, started):
    return ('<SubscriptionOperation><OperationId>%s</OperationId><OperationName>ReimageRoleInstance</OperationName>'
            '<OperationParameters><OperationParameter><Name>roleInstanceName</Name><Value>WebRole1_IN_0</Value>'
            '</OperationParameter></OperationParameters><OperationStatus><Status>InProgress</Status></OperationStatus>'
            '%s</SubscriptionOperation>' % (operation_id, "<OperationStartedTime>%s</OperationStartedTime>" % started
                                            if started else ""))


@pytest.mark.parametrize("history", ["id not an operation id", "no start time", "a token given before"])
def test_a_lost_answer_with_an_unusable_history_is_never_sent_again(emulator, servers, history):
    """The POST's answer is lost; the history that should say whether it started cannot be used: one POST, an
    AmbiguousRequest failure, and a bounded run (not 40 POSTs, not 330 pages)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = {"id not an operation id": _listing(_reimage_entry("not-an-operation-id", now)),
            "no start time": _listing(_reimage_entry(RID, None)),
            "a token given before": _listing("", token="again")}[history]

    def respond(request):
        if request.method == "POST":
            return lambda conn: None  # read, then the connection closes with no answer
        return answer("200 OK", body, {"x-ms-request-id": RID})
    server = servers(respond)
    started = time.monotonic()
    args = dict(REIMAGE, timeout=5, retries=2, wait_timeout=60)
    rc, result, out = run(emulator, server.url, "role_instance_reimage", args)
    assert_clean_failure(rc, result, out, "AmbiguousRequest")
    assert [r.method for r in server.requests].count("POST") == 1, "never sent again"
    assert len(server.requests) <= 5, [r.target for r in server.requests]
    assert time.monotonic() - started < 30

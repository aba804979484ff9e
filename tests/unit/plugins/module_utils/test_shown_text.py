"""Text from the service and URLs as they are shown: control characters escaped, proxies as scheme://host:port,
credentials in any URL hidden, host names checked (issue 24)."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _asm_xml as asm_xml
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    InputError, ServiceManagementError, redact_credentials, shown, shown_proxy)


@pytest.mark.parametrize("text, expected", [
    ("plain text, é and ✓", "plain text, é and ✓"),
    ("a\u202eb", "a\\u202eb"), ("\u2066x\u2069", "\\u2066x\\u2069"), ("zero\u200bwidth", "zero\\u200bwidth"),
    ("esc\x1b[31m", "esc\\x1b[31m"), ("line\nbreak\r\t", "line\\x0abreak\\x0d\\x09"), ("c1\x85", "c1\\x85"),
    ("sep\u2028", "sep\\u2028"), ("tag\U000e0041", "tag\\U000e0041"),
])
def test_control_and_bidi_characters_are_shown_escaped(text, expected):
    assert shown(text) == expected


def test_non_text_is_left_alone():
    assert shown(None) is None and shown(3) == 3


def test_a_service_error_shows_its_words_escaped():
    err = ServiceManagementError("Deny \u202etxt.exe", code="Bad\x00Code")
    assert err.message == "Deny \\u202etxt.exe" and err.code == "Bad\\x00Code"
    assert "\u202e" not in err.readable() and "\u202e" not in str(err.to_dict())


def test_a_failed_operations_words_are_escaped_when_read():
    body = ('<Operation xmlns="http://schemas.microsoft.com/windowsazure"><ID>5f0007e2-6887-352e-96e2-b7788e728e50</ID>'
            '<Status>Failed</Status><HttpStatusCode>500</HttpStatusCode><Error><Code>Internal\u202eError</Code>'
            '<Message>Deny \u202etxt.exe</Message></Error></Operation>')
    assert asm_xml.parse_operation(body)["error"] == {"code": "Internal\\u202eError", "message": "Deny \\u202etxt.exe"}


@pytest.mark.parametrize("proxy, expected", [
    ("http://proxy.test:3128", "http://proxy.test:3128"),
    ("alice:pw@proxy.test:3128", "http://proxy.test:3128"),
    ("http://alice:pw word@proxy.test:3128", "http://proxy.test:3128"),
    ("http://alice:p/w?x#y@proxy.test:3128/", "http://proxy.test:3128"),
    ("HTTPS://a@b@proxy.test", "https://proxy.test"),
    ("socks5h://u:p@[::1]:1080", "socks5h://[::1]:1080"),
    ("proxy.test:8080", "http://proxy.test:8080"),
    ("http://alice:pw@proxy.test:99999", "(a proxy URL that cannot be parsed)"),
    ("alice:pw//x@", "(a proxy URL that cannot be parsed)"),
    ("http://alice:pw@pro xy:1", "(a proxy URL that cannot be parsed)"),
])
def test_a_proxy_is_shown_as_scheme_host_and_port_only(proxy, expected):
    assert shown_proxy(proxy) == expected
    assert "pw" not in shown_proxy(proxy) and "alice" not in shown_proxy(proxy)


def test_no_proxy_shows_nothing():
    assert shown_proxy(None) is None and shown_proxy("") is None


@pytest.mark.parametrize("text, secret", [
    ("Failed to parse: 'http://alice:pw word@proxy.test:1'", "pw word"),
    ("proxy alice:s3cret@127.0.0.1:3128 refused", "s3cret"),
    ("via http://alice:p/w@proxy.test:1 and https://bob:x y@other.test/", "x y"),
    ("via http://alice:p/w@proxy.test:1 and https://bob:x y@other.test/", "p/w"),
])
def test_credentials_without_a_scheme_or_with_spaces_are_redacted(text, secret):
    redacted = redact_credentials(text)
    assert secret not in redacted and "***@" in redacted


def test_redaction_leaves_text_without_credentials_alone():
    for text in ("InternalError: mail ops@example.test", "see https://host.test:443/x then https://other.test/"):
        assert redact_credentials(text) == text


@pytest.mark.parametrize("host", ["{{ lookup('pipe', 'id') }}", "a{%- if 1 %}", "a{# x #}", "", " ", "a\u202eb",
                                  "tab\there", " lead"])
def test_a_host_name_with_a_template_marker_or_hidden_characters_is_refused(host):
    with pytest.raises(InputError) as caught:
        names.check_host_name(host)
    assert "\u202e" not in caught.value.message


def test_a_plain_host_name_is_kept():
    assert names.check_host_name("contoso-web.production.WebRole1_IN_0") == "contoso-web.production.WebRole1_IN_0"


def test_a_proxy_url_the_parser_refuses_shows_none_of_the_parsers_words():
    import requests
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _transport as transport_mod
    bad = requests.exceptions.InvalidURL("Failed to parse: 'alice:S3C' is not a valid host or port")
    failure = transport_mod._exchange_failure(bad, True, "http://alice:S3C/RET@proxy.test:1")  # pylint: disable=protected-access
    assert "S3C" not in str(failure) and "must be percent-encoded" in str(failure)
    assert (failure.sent, failure.refused, failure.proxy) == (False, True, "http://proxy.test:1")
    direct = transport_mod._exchange_failure(requests.exceptions.InvalidURL("no host"), True, None)  # pylint: disable=protected-access
    assert str(direct) == "no host" and direct.proxy is None

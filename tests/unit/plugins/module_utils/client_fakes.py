"""Fakes for the client's and the transport's unit tests: a scripted adapter, a certificate that loads nothing, a
fake clock, answers of the service."""
import io

import requests
import urllib3

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _client as client_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _transport as transport_mod


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
    return transport_mod.Response(status, headers or {}, body)


def lost(sent=True):
    """The adapter's failure when no answer came back (sent: the service may have the request)."""
    return transport_mod.ExchangeFailed(ConnectionResetError("connection reset by peer"), sent=sent)


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

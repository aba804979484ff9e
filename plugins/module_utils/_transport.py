# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the client reaches the service: the requests Session, the TLS context with the management certificate,
proxies, redirects (only to hosts trusted with the certificate), when to ask again (RetryPolicy), the request-rate
ceiling (RateLimiter), and every answer bounded in size and in total time. It knows nothing of the API: the client
(_client.py) builds URLs, parses answers and decides what a lost answer means."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import warnings
import zlib
from urllib.parse import urljoin, urlsplit

try:
    import requests
    from requests.adapters import BaseAdapter, HTTPAdapter
    from requests.utils import get_environ_proxies, select_proxy
    from urllib3 import __version__ as URLLIB3_VERSION
    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool
    from urllib3.exceptions import HTTPError as Urllib3Error, InsecureRequestWarning
    from urllib3.util.ssl_match_hostname import CertificateError as NameMismatch
    REQUESTS_IMPORT_ERROR = None
except ImportError as import_error:  # reported when a client is built, as a clear error
    REQUESTS_IMPORT_ERROR = import_error
    BaseAdapter = HTTPAdapter = HTTPSConnection = HTTPSConnectionPool = object

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AmbiguousRequestError, InputError, ServiceManagementError, TransportError, redact_credentials, shown_proxy)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._retries import RetryPolicy

REDIRECT_STATUS = (307, 308)
MAX_REDIRECTS = 5
# Connecting (TCP, proxy tunnel, TLS handshake) gets at most this long; `timeout` bounds the wait for an answer.
CONNECT_TIMEOUT = 15
# Connections kept per host: the rolling engine's threads (max_parallel, 10 by default) and the inventory's
# readers (max_connections, 8) each hold one while a request is in flight.
POOL_SIZE = 16
# The largest answer read (8 MiB, after any decompression): Service Management answers take a few hundred KiB at
# most (a deployment of hundreds of instances, a page of the operation history). A larger one is refused while it
# is read, never held whole.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 64 * 1024
_TUNNEL_STATUS_RE = re.compile(r"Tunnel connection failed: (\d{3})")


class Headers(dict):
    """Response headers, looked up without regard to case."""

    def __init__(self, pairs=()):
        super().__init__((name.lower(), value) for name, value in (pairs.items() if hasattr(pairs, "items") else pairs))

    def get(self, name, default=None):
        return super().get(name.lower(), default)

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def __contains__(self, name):
        return super().__contains__(name.lower())


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or {})
        self.body = body

    @property
    def request_id(self):
        return self.headers.get("x-ms-request-id")


class ExchangeFailed(Exception):
    """No HTTP answer came back.

    ``sent``: the request may have reached the service. ``refused``: the TLS handshake or the proxy said no,
    which trying again does not change (``tls`` tells which). ``proxy``: the proxy used, as scheme://host:port.

    ``code``: an answer came but cannot be used (ResponseTooLarge, BadResponse); ``status``: its HTTP status.
    """

    def __init__(self, cause, sent, refused=False, tls=False, proxy=None, code=None, status=None):
        super().__init__(redact_credentials(_root_cause(cause)))
        self.sent = sent
        self.refused = refused
        self.tls = tls
        self.proxy = shown_proxy(proxy)
        self.code = code
        self.status = status


_phase = threading.local()


class _Watchdog:
    """The total deadline of one exchange: when it passes, the exchange's sockets are shut down, which ends a
    handshake, headers or body fed one byte at a time (each read within the socket timeout) as much as a silent
    server. Used as ``with``, in the thread that sends; the connection reports its sockets through _watch."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.expired = False
        self._sockets = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        _phase.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        _phase.watchdog = None

    def watch(self, sock):
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut_down(sock)

    def _expire(self):
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut_down(sock)

    def explain(self, failure):
        """``failure``, or after the deadline, what it really was: no complete answer in time."""
        if not self.expired:
            return failure
        return ExchangeFailed(TimeoutError("no complete answer within %s seconds (the timeout option)" % self.seconds),
                              sent=failure.sent, proxy=failure.proxy)


def _shut_down(sock):
    # socket.socket's own shutdown, not SSLSocket's, which would drop the TLS state under the reading thread.
    try:
        socket.socket.shutdown(getattr(sock, "socket", sock), socket.SHUT_RDWR)
    except (OSError, TypeError):  # already closed, or not a socket of this process
        pass


def _watch(sock):
    watchdog = getattr(_phase, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.watch(sock)


class _PhaseMarkingConnection(HTTPSConnection):
    """Notes, for the thread sending, that connecting (TCP, proxy tunnel, TLS handshake) is under way, and hands
    the exchange's watchdog each socket it uses.

    A failure while connecting means the request never left; any other failure may come after the
    service read it. A connection taken from the pool skips this, so a failure on it counts as sent.
    """

    def _new_conn(self):
        sock = super()._new_conn()
        _watch(sock)  # the TCP socket, so the deadline also ends a handshake that never finishes
        return sock

    def connect(self):
        _phase.connecting = True
        super().connect()
        _phase.connecting = False

    def putrequest(self, *args, **kwargs):  # pylint: disable=arguments-differ
        _watch(self.sock)  # the TLS socket, new or taken from the pool; an answer is read from it
        return super().putrequest(*args, **kwargs)


class _PhaseMarkingPool(HTTPSConnectionPool):
    ConnectionCls = _PhaseMarkingConnection


class ManagementAdapter(HTTPAdapter):
    """Hands urllib3 the client's SSL context, which holds the management certificate and the trust anchors.

    Nothing else is loaded into that context (``cert_verify`` would add requests' CA bundle), and each
    failure is reported as ExchangeFailed, telling a request that never left from one whose answer was lost.
    """

    def __init__(self, context, pool_size=POOL_SIZE):
        self._context = context
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self.poolmanager.pool_classes_by_scheme,
                                                       https=_PhaseMarkingPool)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # The context serves the TLS session with the service inside the CONNECT tunnel; the proxy never sees
        # the certificate.
        manager = super().proxy_manager_for(proxy, ssl_context=self._context, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have classes of their own: failures count as sent
            manager.pool_classes_by_scheme = dict(manager.pool_classes_by_scheme, https=_PhaseMarkingPool)
        return manager

    def cert_verify(self, conn, url, verify, cert):
        conn.cert_reqs = "CERT_REQUIRED" if verify else "CERT_NONE"
        conn.ca_certs = conn.ca_cert_dir = None

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # pylint: disable=too-many-arguments
        _phase.connecting = False
        try:
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        except (requests.RequestException, Urllib3Error) as exc:
            raise _exchange_failure(exc, _phase.connecting, select_proxy(request.url, proxies or {})) from None


def _exchange_failure(exc, connecting, proxy):
    """Classify a failure of requests/urllib3 (see RetryPolicy for what each kind leads to)."""
    if isinstance(exc, requests.exceptions.InvalidURL):  # a malformed proxy URL, found before connecting
        # The parser's words may quote part of the proxy's password: only the proxy's address is shown.
        why = ValueError("the proxy URL is not valid (a user or password in it must be percent-encoded, "
                         "and it needs a scheme such as http://)") if proxy else exc
        return ExchangeFailed(why, sent=False, refused=True, proxy=proxy)
    causes = list(_causes(exc))
    if connecting and proxy:
        status = next((int(m.group(1)) for m in (_TUNNEL_STATUS_RE.search(str(c)) for c in causes) if m), None)
        if status is not None:  # the proxy answered CONNECT with another status than 200
            return ExchangeFailed(exc, sent=False, refused=400 <= status < 500, proxy=proxy)
    tls = any(isinstance(c, NameMismatch) or (
        isinstance(c, ssl.SSLError) and not isinstance(c, (ssl.SSLEOFError, ssl.SSLZeroReturnError))) for c in causes)
    return ExchangeFailed(exc, sent=not connecting, refused=tls, tls=tls, proxy=proxy)


def _causes(exc):
    """``exc`` and what it wraps: causes, contexts and the reasons urllib3 keeps in attributes."""
    seen = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped.extend(getattr(current, "args", ()))
        todo.extend(item for item in wrapped if isinstance(item, BaseException))


class _UnusableAnswer(Exception):
    """An answer that is read no further: too large, or compressed in a way that cannot be read."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def _read_body(answer, headers):
    """The body of ``answer`` (a urllib3 response, read in chunks), at most MAX_ANSWER_BYTES once decoded. A body
    compressed although identity was asked for is decompressed under the same cap (gzip bombs included)."""
    length = headers.get("Content-Length") or ""
    if length.strip().isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise _UnusableAnswer("its Content-Length of %s bytes is above the limit of %d MiB" % (
            length.strip(), MAX_ANSWER_BYTES // 1048576), "ResponseTooLarge")
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise _UnusableAnswer("it is encoded as %r, which was not asked for" % encoding[:40], "BadResponse")
    # 32 + MAX_WBITS reads a gzip or a zlib header alike.
    decoder = None if encoding == "identity" else zlib.decompressobj(32 + zlib.MAX_WBITS)
    chunks = []
    size = 0
    while True:
        data = answer.read(_READ_CHUNK, decode_content=False)
        if not data:
            break
        if decoder is not None:
            data = _decompress(decoder, data, MAX_ANSWER_BYTES + 1 - size, encoding)
            if decoder.unconsumed_tail:  # more output than the cap allows is waiting
                size = MAX_ANSWER_BYTES + 1
        size += len(data)
        if size > MAX_ANSWER_BYTES:
            raise _UnusableAnswer("it is larger than the limit of %d MiB" % (MAX_ANSWER_BYTES // 1048576), "ResponseTooLarge")
        chunks.append(data)
    if decoder is not None and not decoder.eof:
        raise _UnusableAnswer("its %s body is cut short" % encoding, "BadResponse")
    return b"".join(chunks)


def _decompress(decoder, data, limit, encoding):
    try:
        return decoder.decompress(data, limit)
    except zlib.error as exc:
        reason = str(exc)
    # Raised outside the except clause: the message is this one, not zlib's it would otherwise be traced to.
    raise _UnusableAnswer("its %s body is corrupt (%s)" % (encoding, reason), "BadResponse")


class _Refuse(BaseAdapter):
    """Plain http:// is never spoken: the service authenticates the certificate over TLS only."""

    def send(self, request, **kwargs):
        raise ExchangeFailed(ValueError("not an https URL: %s" % redact_credentials(request.url)), sent=False, refused=True)

    def close(self):
        pass


def host_of(url):
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def _failure_message(failure, url, attempt):
    where = urlsplit(url).netloc
    via = " through the proxy %s" % failure.proxy if failure.proxy else ""
    if failure.tls:
        return ("TLS with %s%s failed: %s (check ca_path and validate_certs, and that the management certificate "
                "is valid)" % (where, via, failure))
    if failure.refused and failure.proxy:
        return ("the proxy %s refused to connect to %s: %s (check HTTPS_PROXY and NO_PROXY, or set use_proxy to "
                "false to connect directly)" % (failure.proxy, where, failure))
    if failure.refused:
        return "cannot send a request to %s: %s" % (where, failure)
    return "cannot reach %s%s after %d attempts: %s" % (where, via, attempt + 1, failure)


def _root_cause(exc):
    seen = exc
    while getattr(seen, "__context__", None) is not None or getattr(seen, "__cause__", None) is not None:
        seen = seen.__cause__ or seen.__context__
    text = str(seen) or seen.__class__.__name__
    return text if len(text) < 300 else text[:300] + "..."


class Transport:
    """One client's way to the service: a requests Session whose adapter holds the certificate in its TLS context.
    ``send`` gives back the answer the retry policy settles on (2xx, or an error status for the client to read),
    after following redirects to trusted hosts; a failure with no usable answer is a TransportError, or an
    AmbiguousRequestError when a request that may have started something was sent and its answer lost."""

    def __init__(self, certificate, api_version, timeout, validate_certs, ca_path, retries, sleep, use_proxy,
                 endpoint_host, redirect_hosts, pool_size, rate_limiter):
        self.timeout = timeout
        self.retry_policy = RetryPolicy(retries)
        self.sleep = sleep
        self.use_proxy = use_proxy
        self.endpoint_host = endpoint_host
        self.redirect_hosts = redirect_hosts
        self.rate_limiter = rate_limiter
        # Trust comes from ca_path alone when it is given, otherwise from the system store (which honours
        # SSL_CERT_FILE and SSL_CERT_DIR). The adapter loads nothing else into the context, and verify= is
        # passed on every request, so REQUESTS_CA_BUNDLE and requests' own bundle play no part.
        try:
            context = ssl.create_default_context(cafile=ca_path if validate_certs else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise InputError("ca_path %s cannot be used as a CA bundle: %s" % (
                ca_path, getattr(exc, "strerror", None) or exc)) from None
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            # build_client has warned once; urllib3 would warn again on every connection to the endpoint.
            warnings.filterwarnings("ignore", "Unverified HTTPS request is being made to host '%s'"
                                    % re.escape(self.endpoint_host), InsecureRequestWarning)
        elif URLLIB3_VERSION.startswith("1."):
            # urllib3 1.x gives the context no server name for an IP address, which a name-checking context
            # refuses; it then checks the name itself once the handshake is done (2.x leaves it to the context).
            context.check_hostname = False
        certificate.load_into(context)
        self.verify = (ca_path or True) if validate_certs else False
        self.session = requests.Session()
        # Proxies are chosen per request below; trust_env would also read .netrc and REQUESTS_CA_BUNDLE.
        self.session.trust_env = False
        self.session.mount("https://", ManagementAdapter(context, pool_size))
        self.session.mount("http://", _Refuse())
        # identity: a compressed answer could hide any size; _read_body still caps one sent compressed anyway.
        self.session.headers.update({"x-ms-version": api_version, "Accept": "application/xml",
                                     "Accept-Encoding": "identity", "User-Agent": "azure_classic.cloud_services"})

    def close(self):
        self.session.close()

    def _proxies(self, url):
        """The proxy for ``url`` as ansible.builtin.uri chooses it: HTTPS_PROXY (or ALL_PROXY) unless NO_PROXY
        covers the host; none with use_proxy false."""
        return get_environ_proxies(url) if self.use_proxy else {}

    def exchange(self, method, url):
        """One HTTP exchange, never following a redirect, within ``timeout`` seconds in all and MAX_ANSWER_BYTES;
        raises ExchangeFailed when no usable answer came back."""
        headers = None
        body = None
        if method == "POST":
            headers = {"Content-Length": "0", "Content-Type": "application/xml"}
            body = b""
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        watchdog = _Watchdog(self.timeout)
        try:
            with watchdog:
                raw = self.session.request(method, url, data=body, headers=headers, verify=self.verify,
                                           proxies=self._proxies(url), allow_redirects=False, stream=True,
                                           timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout))
                answer = Response(raw.status_code, Headers(raw.headers.items()), None)
                try:
                    answer.body = _read_body(raw.raw, answer.headers)
                except BaseException:
                    raw.close()  # a connection with an answer half read is not used again
                    raise
                raw.raw.release_conn()
        except ExchangeFailed as failure:
            raise watchdog.explain(failure) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema) as exc:  # found while preparing: nothing left
            raise ExchangeFailed(exc, sent=False, refused=True) from None
        except _UnusableAnswer as exc:
            raise ExchangeFailed(exc, sent=True, refused=True, code=exc.code, status=answer.status) from None
        except (requests.RequestException, Urllib3Error, OSError, http.client.HTTPException) as exc:
            raise watchdog.explain(ExchangeFailed(exc, sent=True)) from None  # the body broke off after the headers
        if watchdog.expired:  # a body without a length ends where the socket was shut down: it may be cut short
            raise watchdog.explain(ExchangeFailed(TimeoutError(), sent=True)) from None
        return answer

    def send(self, method, url, on_answer=None):
        """Send one logical request; returns the Response the retry policy gives up on (any status but a redirect),
        or raises. ``on_answer(response, url)`` sees every answer. Redirects lead only to hosts trusted with the
        certificate."""
        policy = self.retry_policy
        attempt = 0
        hops = 0
        while True:
            try:
                response = self.exchange(method, url)
            except ExchangeFailed as failure:
                verdict = policy.after_failure(failure, method, attempt)
                if verdict == policy.AMBIGUOUS:
                    raise AmbiguousRequestError(
                        "the connection to %s failed after the %s request was sent (%s): the operation may "
                        "have started" % (urlsplit(url).netloc, method, failure), code=failure.code) from None
                if verdict == policy.GIVE_UP and failure.code:
                    raise ServiceManagementError("the answer of %s to %s was refused: %s" % (urlsplit(url).netloc, method, failure),
                                                 code=failure.code, http_status=failure.status) from None
                if verdict == policy.GIVE_UP:
                    raise TransportError(_failure_message(failure, url, attempt)) from None
            else:
                if on_answer is not None:
                    on_answer(response, url)
                if response.status in REDIRECT_STATUS:
                    hops += 1
                    url = self._redirect_target(url, response, hops)
                    continue
                if policy.after_answer(response.status, attempt) == policy.GIVE_UP:
                    return response
            self.sleep(policy.delay(attempt))
            attempt += 1

    def _redirect_target(self, url, response, hops):
        """Where a 307/308 leads, if that host may see the certificate; else a TransportError."""
        location = response.headers.get("Location")
        if not location or hops > MAX_REDIRECTS:
            raise TransportError("too many redirects (or one without a Location) from %s" % url)
        target = urljoin(url, location)
        if urlsplit(target).scheme.lower() != "https":
            raise TransportError("refusing a redirect from %s to a non-https URL %s" % (url, redact_credentials(target)))
        try:  # the check makes sure urllib3 connects to the host read here
            names.check_url(target, "its Location", allow_query=True)
            host, why = host_of(target), ""
        except InputError as exc:
            host, why = None, " (%s)" % exc.message
        if host is None or (host != self.endpoint_host and not any(
                host == allowed or host.endswith("." + allowed) for allowed in self.redirect_hosts)):
            also = " or %s (and its regional hosts)" % ", ".join(self.redirect_hosts) if self.redirect_hosts else ""
            raise TransportError(
                "refusing a redirect from %s to %s: the management certificate is presented only to %s%s%s"
                % (urlsplit(url).netloc, redact_credentials(target), self.endpoint_host, also, why))
        return target

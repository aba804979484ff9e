# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Service Management client: the one place that does HTTP, TLS, retries, redirects and errors."""

from __future__ import annotations

import email.utils
import http.client
import random
import re
import socket
import ssl
import threading
import time
import warnings
import zlib
from urllib.parse import quote, urlencode, urljoin, urlsplit

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
    AcceptedRequestError, AmbiguousRequestError, AzureClassicError, InputError, ServiceManagementError, TransportError,
    WaitTimeoutError, redact_credentials, shown, shown_proxy)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import (
    READY, Deadline, PollSchedule, instance_settled, operation_ended, wait_until)

CONFLICT_HOLDER_RE = re.compile(r"x-ms-requestid\s+([0-9a-fA-F]{32})")
REDIRECT_STATUS = (307, 308)
MAX_REDIRECTS = 5
LOST_ANSWER_GRACE = 5.0
# Times sent to the service and compared with its history are the service's, from the Date header of its answers
# (see ServiceManagementClient.service_now). What is left of a skew after that is the header's one-second
# resolution and the service's own machines disagreeing: a lost answer's operation counts as ours when the history
# shows it started at most this long before we sent it.
CLOCK_TOLERANCE = 120
# A skew between the controller's clock and the service's larger than this is worth a warning (it changes nothing);
# one larger than MAX_CLOCK_SKEW is not believed.
CLOCK_WARN_SKEW = 300
MAX_CLOCK_SKEW = 86400
# How far back of the send the history is read when a lost answer is looked up, and after a 409, how far back of the
# first attempt the operation holding the lock may have started.
LOST_ANSWER_LOOKBACK = 300
LOCK_HOLDER_LOOKBACK = 3600
# How far past now the operation history is read, so that an operation the service stamps ahead is not missed.
HISTORY_AHEAD = 86400
# List Subscription Operations pages at most (100 operations each on the service): a listing that goes on past
# this, or hands back a continuation token it gave before, is not the service's and is refused.
MAX_HISTORY_PAGES = 100
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
ROLE_OPERATIONS = {"reimage": "ReimageRoleInstance", "reboot": "RebootRoleInstance",
                   "rebuild": "RebuildRoleInstance"}
_TUNNEL_STATUS_RE = re.compile(r"Tunnel connection failed: (\d{3})")


def backoff_delay(attempt, base=1.0, cap=20.0, rand=random.random):
    """Exponential backoff with jitter: half fixed, half random, so retries from many hosts spread out."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling / 2 + rand() * ceiling / 2


class RetryPolicy:
    """When request() asks again, in one place.

    - An answer whose status is in ``statuses`` (throttling, internal error) is asked again, whatever the method.
    - No answer, and the request never left (connect, proxy CONNECT or TLS handshake failed): sent again,
      whatever the method, unless the TLS handshake or the proxy refused outright: asking again changes nothing.
    - No answer after the request left (connection reset, read timeout): sent again only for ``resend_methods``.
      For any other method the service may have acted on it: request() raises AmbiguousRequestError, and
      role_instance_operation looks the operation up before anything is sent again.
    - An answer that came but cannot be used (larger than MAX_ANSWER_BYTES, in an encoding not asked for): not
      asked again, the same would come back; after a POST, handled as a lost answer (AmbiguousRequestError).
    - At most ``retries`` times, waiting ``backoff_delay(attempt)`` before each.

    urllib3's own Retry is not used: its sleeps could not be injected, and 409 waits and lost-answer lookups
    need the service's error bodies, which only this client parses.
    """

    RETRY, GIVE_UP, AMBIGUOUS = "retry", "give up", "ambiguous"
    statuses = frozenset((500, 503))
    resend_methods = frozenset(("GET",))

    def __init__(self, retries, backoff_base=1.0, backoff_cap=20.0):
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap

    def after_answer(self, status, attempt):
        return self.RETRY if status in self.statuses and attempt < self.retries else self.GIVE_UP

    def after_failure(self, failure, method, attempt):
        if failure.sent and method not in self.resend_methods:
            return self.AMBIGUOUS
        if failure.refused or attempt >= self.retries:
            return self.GIVE_UP
        return self.RETRY

    def delay(self, attempt, rand=random.random):
        return backoff_delay(attempt, self.backoff_base, self.backoff_cap, rand)


class RateLimiter:
    """At most ``rate`` requests a second, shared by threads: each takes the next free slot and sleeps until it
    (an even spacing, so a roll's polls never arrive at the service in bursts)."""

    # Sends are spaced for 90 % of the ceiling: threads and TLS add jitter between sending and arriving, and
    # the ceiling is a promise about arrivals in any one second at the service.
    HEADROOM = 0.9

    def __init__(self, rate, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / (rate * self.HEADROOM)
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self):
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


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


def _asm_xml():
    """The XML parsers, imported when a body is first read: a reimage with wait=false never needs them."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _asm_xml as asm_xml
    return asm_xml


def deployment_path(service, slot=None, deployment_name=None):
    base = "/services/hostedservices/%s" % quote(service, safe="")
    if deployment_name:
        return "%s/deployments/%s" % (base, quote(deployment_name, safe=""))
    return "%s/deploymentslots/%s" % (base, quote(slot, safe=""))


class ServiceManagementClient:
    def __init__(self, subscription_id, certificate, management_url, api_version="2014-10-01", timeout=60,
                 validate_certs=True, ca_path=None, retries=5, warn=None, sleep=time.sleep,
                 clock=time.monotonic, use_proxy=True, redirect_hosts=(), pool_size=POOL_SIZE, poll=None,
                 rate_limiter=None):
        if REQUESTS_IMPORT_ERROR is not None:
            raise InputError(
                "the Python library 'requests' is needed on the machine that runs this (%s); install it, for "
                "example with pip install -r requirements.txt from the collection" % REQUESTS_IMPORT_ERROR,
                code="MissingLibrary")
        self.subscription_id = subscription_id
        self.base_url = management_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.retries = retries
        self.retry_policy = RetryPolicy(retries)
        self.warn = warn or (lambda message: None)
        self.sleep = sleep
        self.clock = clock
        self.use_proxy = use_proxy
        # Redirects may lead to the endpoint's own host, or to these hosts and their subdomains (the cloud's
        # management host and its regional front ends): nowhere else is trusted with the management certificate.
        self.endpoint_host = _host(self.base_url)
        self.redirect_hosts = tuple(h.lower().strip(".") for h in redirect_hosts)
        # How this client's waits poll; a roll gives each deployment's client its share of the rate ceiling.
        self.poll = poll or PollSchedule()
        # Shared by every client of one roll, so the whole roll stays under its request-rate ceiling.
        self.rate_limiter = rate_limiter
        # Seconds the service's clock is ahead of ours, from the Date header of its last answer (None: no answer yet).
        self.clock_offset = None
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

    # -- transport ------------------------------------------------------------
    def _url(self, path, query=None):
        url = "%s/%s%s" % (self.base_url, self.subscription_id, path)
        if query:
            url += "?" + urlencode(query)
        return url

    def _proxies(self, url):
        """The proxy for ``url`` as ansible.builtin.uri chooses it: HTTPS_PROXY (or ALL_PROXY) unless NO_PROXY
        covers the host; none with use_proxy false."""
        return get_environ_proxies(url) if self.use_proxy else {}

    def _exchange(self, method, url):
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

    def request(self, method, path, query=None):
        """Send one logical request; returns a Response with a 2xx status or raises. Retries follow
        self.retry_policy; redirects are followed only to hosts trusted with the certificate."""
        url = self._url(path, query)
        policy = self.retry_policy
        attempt = 0
        hops = 0
        while True:
            try:
                response = self._exchange(method, url)
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
                self._learn_service_clock(response, url)
                if response.status in REDIRECT_STATUS:
                    hops += 1
                    url = self._redirect_target(url, response, hops)
                    continue
                if policy.after_answer(response.status, attempt) == policy.GIVE_UP:
                    if response.status >= 300:
                        raise self._error(response)
                    return response
            self.sleep(policy.delay(attempt))
            attempt += 1

    def _learn_service_clock(self, response, url):
        """Keep how far the service's clock is from ours (the Date header of the endpoint's own answers), and warn
        once when it is far off. A Date without a time zone, or more than a day off, is not trusted."""
        if _host(url) != self.endpoint_host:
            return
        try:
            date = email.utils.parsedate_to_datetime(response.headers.get("Date") or "")
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        if date.tzinfo is None:
            return
        offset = date.timestamp() - time.time()
        if abs(offset) > MAX_CLOCK_SKEW:
            self.warn("the service's answers are dated %s, %d seconds from the controller's clock; that date is not "
                      "used, and operation times are read on the controller's clock" % (
                          shown(response.headers.get("Date"), 40), offset))
            return
        first = self.clock_offset is None
        self.clock_offset = offset
        if first and abs(self.clock_offset) > CLOCK_WARN_SKEW:
            self.warn("the controller's clock is %d seconds %s of the service's (the Date of its answers); "
                      "operation times are read on the service's clock, so nothing is affected, but the controller's "
                      "clock wants fixing (NTP)" % (abs(self.clock_offset), "behind" if self.clock_offset > 0 else "ahead"))

    def service_now(self, local=None):
        """The service's time (epoch seconds) at the controller's ``local`` time (now by default): the controller's
        clock corrected by the Date header of the service's last answer."""
        return (time.time() if local is None else local) + (self.clock_offset or 0.0)

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
            host, why = _host(target), ""
        except InputError as exc:
            host, why = None, " (%s)" % exc.message
        if host is None or (host != self.endpoint_host and not any(
                host == allowed or host.endswith("." + allowed) for allowed in self.redirect_hosts)):
            also = " or %s (and its regional hosts)" % ", ".join(self.redirect_hosts) if self.redirect_hosts else ""
            raise TransportError(
                "refusing a redirect from %s to %s: the management certificate is presented only to %s%s%s"
                % (urlsplit(url).netloc, redact_credentials(target), self.endpoint_host, also, why))
        return target

    @staticmethod
    def _error(response):
        code, message = _asm_xml().parse_error(response.body)
        if code is None:
            snippet = shown(response.body[:400].decode("utf-8", "replace"), 200) if response.body else "(empty body)"
            code, message = "HttpError%d" % response.status, "unexpected answer: %s" % snippet
        return ServiceManagementError(message or "", code=code, http_status=response.status,
                                      request_id=_checked_request_id(response.request_id))

    # -- reads ------------------------------------------------------------------
    @staticmethod
    def _parsed(parse, response):
        """``parse(response.body)``; a body that is not what the service sends is a BadResponse naming the answer."""
        try:
            return parse(response.body)
        except ServiceManagementError as err:
            err.http_status = err.http_status or response.status
            err.request_id = err.request_id or _checked_request_id(response.request_id)
            raise

    def list_cloud_services(self):
        return self._parsed(_asm_xml().parse_hosted_services, self.request("GET", "/services/hostedservices"))

    def get_cloud_service(self, service, embed_detail=False):
        query = {"embed-detail": "true"} if embed_detail else None
        return self._parsed(_asm_xml().parse_hosted_service,
                            self.request("GET", "/services/hostedservices/%s" % quote(service, safe=""), query))

    def get_deployment(self, service, slot=None, deployment_name=None):
        return self._parsed(_asm_xml().parse_deployment,
                            self.request("GET", deployment_path(service, slot, deployment_name)))

    def get_operation(self, request_id):
        operation = self._parsed(_asm_xml().parse_operation,
                                 self.request("GET", "/operations/%s" % quote(request_id, safe="")))
        operation["request_id"] = operation["request_id"] or request_id
        return operation

    def list_subscription_operations(self, start, end, object_id=None, result=None):
        """Every operation in [start, end] (UTC epoch seconds), following continuation tokens."""
        query = {"StartTime": _iso(start), "EndTime": _iso(end)}
        if object_id:
            query["ObjectIdFilter"] = object_id
        if result:
            query["OperationResultFilter"] = result
        operations = []
        tokens = set()
        for _page in range(MAX_HISTORY_PAGES):
            page, token = _asm_xml().parse_subscription_operations(self.request("GET", "/operations", query).body)
            operations.extend(page)
            if not token:
                return operations
            if token in tokens:
                raise ServiceManagementError("the service's operation list handed back a continuation token it had "
                                             "given before: the listing would never end", code="BadResponse")
            tokens.add(token)
            query["ContinuationToken"] = token
        raise ServiceManagementError("the service's operation list went on past %d pages: refused as unbounded"
                                     % MAX_HISTORY_PAGES, code="BadResponse")

    def operation_history(self, service, start, result=None):
        """The operations on ``service`` that List Subscription Operations shows since ``start`` (epoch seconds on
        the service's clock, see service_now), each with ``kind`` (reimage, reboot, rebuild, or None for any other
        operation), ``instance`` and ``deployment`` (lower case, "" when absent), ``started`` (epoch, 0 when absent)
        and its parameters with lower-case names. The one reading of the history: the lost-answer and lock-holder
        lookups and the rolling engine's resume and checks all use it."""
        object_id = "/%s/services/hostedservices/%s" % (self.subscription_id, service)
        # The window's end lies far ahead: an operation stamped a little ahead must not be hidden.
        operations = self.list_subscription_operations(start, self.service_now() + HISTORY_AHEAD, object_id=object_id,
                                                       result=result)
        kinds = {name.lower(): kind for kind, name in ROLE_OPERATIONS.items()}
        for op in operations:
            params = {k.lower(): v for k, v in (op.get("parameters") or {}).items() if k}
            op.update(kind=kinds.get((op.get("name") or "").lower()), parameters=params,
                      instance=(params.get("roleinstancename") or "").lower(),
                      deployment=(params.get("deploymentname") or "").lower(), started=op.get("started") or 0)
        return operations

    # -- waits --------------------------------------------------------------------
    def wait_for_operation(self, request_id, deadline, probe_first=False, on_poll=None, expected=None):
        """Poll Get Operation Status until the operation is no longer InProgress; raises on timeout. ``expected``:
        how long such an operation has taken so far (see _waiter.wait_until)."""
        if probe_first:
            operation = self.get_operation(request_id)
            if operation_ended(operation):
                return operation
        done, operation, _polls = wait_until(lambda: self.get_operation(request_id), operation_ended, deadline,
                                             self.sleep, on_poll, self.poll, expected)
        if not done:
            raise WaitTimeoutError("operation %s was still InProgress after %d seconds" % (
                request_id, int(deadline.seconds)), request_id=request_id, last_status=operation["status"])
        return operation

    def wait_for_instance_ready(self, service, instance, deadline, slot=None, deployment_name=None):
        """Poll Get Deployment until the instance reports ReadyRole; fail fast on states it will not leave."""
        def probe():
            deployment = self.get_deployment(service, slot, deployment_name)
            for inst in deployment["role_instances"]:
                if inst["instance_name"].lower() == instance.lower():
                    return inst
            raise ServiceManagementError("role instance %s is no longer in the deployment" % instance,
                                         code="ResourceNotFound")

        done, inst, _polls = wait_until(probe, lambda i: instance_settled(i["instance_status"]), deadline,
                                        self.sleep, None, self.poll)
        if done and inst["instance_status"] == READY:
            return inst
        if done:
            raise ServiceManagementError("role instance %s is %s and will not become ReadyRole by itself%s" % (
                instance, inst["instance_status"],
                (": " + inst["instance_state_details"]) if inst.get("instance_state_details") else ""),
                code="InstanceNotReady")
        raise WaitTimeoutError("role instance %s was still %s after %d seconds" % (
            instance, inst["instance_status"], int(deadline.seconds)), last_status=inst["instance_status"])

    # -- role instance operations ---------------------------------------------------
    def role_instance_operation(self, kind, service, instance, slot=None, deployment_name=None, deadline=None,
                                recheck=None, on_lock_wait=None):
        """POST Reimage/Reboot/Rebuild Role Instance and return its request id.

        Never sent twice for one call: a POST whose answer was lost is looked up with List Subscription Operations
        before anything is re-sent, and a 409 from another operation on the deployment is waited out (within
        ``deadline``) and then ``recheck(holder)`` is asked before sending again. It returns the request id of an
        operation to follow instead of sending (another client's ``kind`` of this same instance, say), or None to
        send, or raises to give up. The default asks whether the operation that held the lock was a ``kind`` of this
        same instance, started by someone else: that one is followed, not repeated.
        """
        path = "%s/roleinstances/%s" % (deployment_path(service, slot, deployment_name), quote(instance, safe=""))
        query = {"comp": kind}
        if kind == "rebuild":
            query["resources"] = "allLocalDrives"
        deadline = deadline or Deadline(0, clock=self.clock)
        first_attempt = time.time()
        where = _Where(self, service, slot, deployment_name, instance)
        recheck = recheck or (lambda holder: self._holder_if_same(kind, where, holder, first_attempt))
        conflicts = 0
        while True:
            sent_at = time.time()
            try:
                response = self.request("POST", path, query)
            except AmbiguousRequestError as err:
                adopted = self._find_started_operation(kind, where, sent_at)
                if not adopted:
                    # A slow service may still be processing the original: look once more before re-sending.
                    self.sleep(min(self.timeout, LOST_ANSWER_GRACE))
                    adopted = self._find_started_operation(kind, where, sent_at)
                if adopted:
                    self.warn("the answer to the %s request for %s was lost; the service shows it started as "
                              "operation %s, which is adopted instead of sending it again" % (kind, instance, adopted))
                    return adopted
                if deadline.expired():
                    raise AmbiguousRequestError(
                        "%s; the service does not list it and the wait budget is spent, so it was not re-sent"
                        % err.message) from None
                continue
            except AzureClassicError as err:
                if err.code != "ConflictError":
                    raise
                match = CONFLICT_HOLDER_RE.search(err.message or "")
                holder = match.group(1).lower() if match else None
                gave_up = ServiceManagementError(
                    "%s (gave up waiting for the deployment's lock after %d seconds)" % (
                        err.message, int(deadline.seconds)), code=err.code, http_status=err.http_status,
                    request_id=err.request_id, hint=err.hint)
                if deadline.expired():
                    raise gave_up from None
                if holder:
                    try:
                        self.wait_for_operation(holder, deadline, on_poll=on_lock_wait)
                    except WaitTimeoutError:
                        raise gave_up from None  # never sent again unchecked
                else:
                    self.sleep(min(backoff_delay(conflicts), max(deadline.remaining, 0)))
                conflicts += 1
                instead = recheck(holder)
                if instead:
                    return names.check_request_id(instead)
                continue
            return _service_request_id(kind, response)

    def _find_started_operation(self, kind, where, sent_at):
        """The request id of our operation if the service shows it started, else None. ``sent_at`` is the
        controller's time of the send, put on the service's clock before it is compared with the history."""
        try:
            known = self.clock_offset is not None
            operations = self.operation_history(where.service, self.service_now(sent_at) - LOST_ANSWER_LOOKBACK)
            if not known and abs(self.clock_offset or 0) > LOST_ANSWER_LOOKBACK - CLOCK_TOLERANCE:
                # That was the first answer this client had, and it moved the window: read it again.
                operations = self.operation_history(where.service, self.service_now(sent_at) - LOST_ANSWER_LOOKBACK)
            mine = same_operations(kind, where.deployment_name, where.instance, operations,
                                   self.service_now(sent_at) - CLOCK_TOLERANCE)
        except AmbiguousRequestError:
            raise
        except AzureClassicError as err:
            raise AmbiguousRequestError(
                "the answer to the %s request for %s was lost and the service's operation list could not be read "
                "(%s): the operation may have started; check it before retrying" % (kind, where.instance, err.message),
                code="AmbiguousRequest") from None
        return mine[-1]["request_id"] if mine else None

    def _holder_if_same(self, kind, where, holder, first_attempt):
        """After a 409: the holder's request id when the history shows it was a ``kind`` of this same instance
        (another client got there first; following it is what was asked for), else None."""
        if not holder:
            return None
        try:
            operations = self.operation_history(where.service,
                                                self.service_now(first_attempt) - LOCK_HOLDER_LOOKBACK)
            same = same_operations(kind, where.deployment_name, where.instance, operations, 0)
        except AzureClassicError:
            return None  # not known to be the same: the POST is sent again, as it would have been
        if any(op["request_id"] == holder for op in same):
            self.warn("operation %s, a %s of %s that another client started, held the deployment's lock; it is "
                      "followed instead of sending a second one" % (holder, kind, where.instance))
            return holder
        return None


class _Where:
    """The instance a role operation addresses; the deployment's name is read once, and only when a history entry
    must be matched to it (an instance name alone is not enough: both slots may have one of that name)."""

    def __init__(self, client, service, slot, deployment_name, instance):
        self.client = client
        self.service = service
        self.slot = slot
        self.instance = instance
        self._name = deployment_name

    def deployment_name(self):
        if self._name is None:
            self._name = self.client.get_deployment(self.service, self.slot)["name"]
        return self._name


def same_operations(kind, deployment_name, instance, operations, since):
    """The ``kind`` operations on ``instance`` of the deployment ``deployment_name()`` names (asked only when an
    entry names a deployment: both slots may hold an instance of that name) that started at or after ``since``
    (service time), oldest first. An entry that may be one of them but whose start time or id cannot be used makes
    the answer unclear: AmbiguousRequestError, so that nothing is sent again on a guess."""
    found = []
    for op in operations:
        if op["kind"] != kind or op["instance"] != instance.lower():
            continue
        if op["deployment"] and op["deployment"] != deployment_name().lower():
            continue
        if op["started"] and op["started"] < since:
            continue
        if not op["started"] or not op["request_id"]:
            raise AmbiguousRequestError(
                "the service's history shows a %s of %s whose %s cannot be used (%r): whether it is the one in "
                "question is unknown, so nothing is sent again; check the instance before retrying" % (
                    kind, instance, "start time" if not op["started"] else "id",
                    op.get("started_time") if not op["started"] else (op.get("operation_id") or "")[:80]),
                code="AmbiguousRequest")
        found.append(op)
    return sorted(found, key=lambda op: op["started"])


class _Refuse(BaseAdapter):
    """Plain http:// is never spoken: the service authenticates the certificate over TLS only."""

    def send(self, request, **kwargs):
        raise ExchangeFailed(ValueError("not an https URL: %s" % redact_credentials(request.url)), sent=False, refused=True)

    def close(self):
        pass


def _service_request_id(kind, response):
    """The x-ms-request-id of an accepted request, checked before it goes into a Get Operation Status URL. The
    operation started even when it is missing or malformed: AcceptedRequestError says so."""
    value = response.request_id
    if not value:
        raise AcceptedRequestError("the service accepted the %s request but sent no x-ms-request-id" % kind,
                                   code="MissingRequestId", http_status=response.status)
    checked = _checked_request_id(value)
    if checked is None:
        raw = shown(value, 80)
        raise AcceptedRequestError("the service accepted the %s request but its x-ms-request-id %s is not an "
                                   "operation id" % (kind, raw), code="BadRequestId", http_status=response.status,
                                   raw_request_id=raw)
    return checked


def _checked_request_id(value):
    """``value`` as an operation id, or None when it is not one (or missing)."""
    try:
        return names.check_request_id(value) if value else None
    except InputError:
        return None


def _host(url):
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


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _root_cause(exc):
    seen = exc
    while getattr(seen, "__context__", None) is not None or getattr(seen, "__cause__", None) is not None:
        seen = seen.__cause__ or seen.__context__
    text = str(seen) or seen.__class__.__name__
    return text if len(text) < 300 else text[:300] + "..."

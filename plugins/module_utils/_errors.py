# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's errors, private to it. One root, AzureClassicError, with two branches: what was found
before any request was sent (InputError, CredentialError) and what happened talking to the service
(ServiceManagementError: its answer, no answer, a lost answer, a wait that ran out). Each carries one structured
value for users (to_dict) and one sentence (readable)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# The user and password of a URL: everything after "scheme://" up to its last "@" before the next URL or line
# end (a password may hold an unencoded "/", "?", "#" or space); and "user:password@" with no scheme, as curl and
# urllib3 accept in HTTPS_PROXY. Hiding too much of a message costs nothing, showing a password does.
_URL_CREDENTIALS_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:(?!://)[^\n])*@")
_BARE_CREDENTIALS_RE = re.compile(r"(?<![\w/@:.%+-])[\w.%+-]+:(?!//)[^\s@]*@(?=[\w\[])")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")

# What to check, by error code, appended to the readable message.
HINTS = {
    "ForbiddenError": "check that the management certificate is uploaded to this subscription and that "
                      "subscription_id is right",
    "AuthenticationFailed": "check that the management certificate is uploaded to this subscription",
    "ResourceNotFound": "check the cloud service, deployment slot or name, and role instance name",
    "ConflictError": "another operation holds the deployment's lock; wait for it or raise wait_timeout",
    "TooManyRequests": "the service is throttling this subscription; retry later or raise retries",
    "InternalError": "the service failed; retry later",
    "MissingOrIncorrectVersionHeader": "check api_version",
}


def redact_credentials(text):
    """``text`` without the user and password of any URL in it (proxy, health and endpoint URLs may carry them)."""
    if not isinstance(text, str):
        return text
    return _BARE_CREDENTIALS_RE.sub("***@", _URL_CREDENTIALS_RE.sub(r"\1***@", text))


def shown_proxy(proxy):
    """A proxy URL as it may be shown anywhere: ``scheme://host:port``, from a parser, never any other part of it
    (``alice:pw@host:port``, without a scheme, is http as for curl and urllib3; a password may hold spaces or an
    unencoded "/", so the host is what follows the last "@")."""
    if not proxy:
        return None
    scheme, sep, rest = str(proxy).strip().partition("://")
    if not sep:
        scheme, rest = "http", scheme
    address = re.split(r"[/?#]", rest.rpartition("@")[2], maxsplit=1)[0]
    try:
        parts = urlsplit("//" + address)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not _SCHEME_RE.match(scheme) or not host or not re.fullmatch(r"[\w.:%-]+", host):
        return "(a proxy URL that cannot be parsed)"
    host = "[%s]" % host if ":" in host else host
    return "%s://%s%s" % (scheme.lower(), host, ":%d" % port if port else "")


# Characters that change how text reads rather than what it says: C0/C1 controls and DEL (Cc), format characters
# such as the bidi overrides U+202E and U+2066..U+2069 or zero-width spaces (Cf), line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def shown(text, limit=None):
    """``text`` (from the service, or naming something from it) for a message, table or report: every control,
    format or separator character written as an escape (\\x1b, \\u202e), so it cannot hide or reorder what a
    reader sees; with ``limit``, at most that many characters of it. Any other value is returned as it is."""
    if not isinstance(text, str):
        return text
    cut = text if limit is None else text[:limit]
    return "".join(_escape(char) if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in cut) + (
        "..." if len(cut) < len(text) else "")


def _escape(char):
    code = ord(char)
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code


class AzureClassicError(Exception):
    """Every error of the collection; http_status is None when no answer of the service is behind it."""

    def __init__(self, message, code=None, http_status=None, request_id=None, hint=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.hint = hint if hint is not None else HINTS.get(code)

    def to_dict(self):
        return {"code": self.code, "message": self.message, "http_status": self.http_status,
                "request_id": self.request_id}

    def readable(self, context=None):
        """One sentence for ``msg``: what failed, the service's words, what to check."""
        parts = []
        if context:
            parts.append(context + ":")
        if self.http_status:
            parts.append("%s %s:" % (self.http_status, self.code or "error"))
        parts.append(self.message.rstrip("."))
        text = " ".join(parts)
        if self.hint:
            text += " (%s)" % self.hint
        return text


class InputError(AzureClassicError):
    """A problem found locally (bad input, a missing library); no request was sent."""


class CredentialError(InputError):
    """The management certificate could not be read or used."""


class ServiceManagementError(AzureClassicError):
    """Talking to the service went wrong: it answered with an error, or did not answer. Its words are shown with
    control characters escaped."""

    def __init__(self, message, code=None, http_status=None, request_id=None, hint=None):
        super().__init__(shown(message), shown(code), http_status, request_id, hint)


class TransportError(ServiceManagementError):
    """The service could not be reached (after retries)."""


class AmbiguousRequestError(ServiceManagementError):
    """A mutating request was sent but its answer was lost: the operation may have started."""


class WaitTimeoutError(ServiceManagementError):
    """A wait ran out of time; the operation is still running (it was not failed by us)."""

    def __init__(self, message, request_id=None, last_status=None):
        super().__init__(message, code="WaitTimeout", request_id=request_id, hint="")
        self.last_status = last_status


class AcceptedRequestError(ServiceManagementError):
    """The service accepted a mutating request (the operation started), but its answer names no usable request
    id. ``raw_request_id``: the header as sent, escaped and cut short, or None when there was none."""

    def __init__(self, message, code, http_status=None, raw_request_id=None):
        super().__init__(message, code=code, http_status=http_status)
        self.raw_request_id = raw_request_id

# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's errors, private to it. One root, AzureClassicError, with two branches: what was found
before any request was sent (InputError, CredentialError) and what happened talking to the service
(ServiceManagementError: its answer, no answer, a lost answer, a wait that ran out). Each carries one structured
value for users (to_dict) and one sentence (readable)."""

from __future__ import annotations

import re

# The user and password of a URL: everything up to its last "@" (a password may hold an unencoded "/", "?"
# or "#"); hiding too much of a URL in a message costs nothing, showing a password does.
_URL_CREDENTIALS_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)\S*@")

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
    return _URL_CREDENTIALS_RE.sub(r"\1***@", text) if isinstance(text, str) else text


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
    """Talking to the service went wrong: it answered with an error, or did not answer."""


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

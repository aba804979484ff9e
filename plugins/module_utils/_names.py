# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of names, ids and URLs before they are used, so bad input never reaches the service. Private to this
collection."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError, redact_credentials, shown

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
REQUEST_ID_RE = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
SLOTS = ("production", "staging")

# Cloud service names are DNS labels (<name>.cloudapp.net). Deployment and role instance names are
# limited to letters, digits, '.', '_' and '-', which covers every real name in the recordings.
_RULES = {
    "cloud_service": (re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"), 63,
                      "letters, digits and hyphens, starting and ending with a letter or digit"),
    "deployment_name": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$"), 100,
                        "letters, digits, '.', '_' and '-', starting with a letter or digit"),
    "role_instance": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$"), 128,
                      "letters, digits, '.', '_' and '-', starting with a letter or digit"),
    "role_name": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$"), 128,
                  "letters, digits, '.', '_' and '-', starting with a letter or digit"),
}


def _describe(value):
    """The value for an error message, with control and non-ASCII characters made visible."""
    return repr(value) if isinstance(value, str) else repr(str(value))


def check_name(kind, value):
    pattern, limit, allowed = _RULES[kind]
    if not isinstance(value, str) or not value:
        raise InputError("%s must be a non-empty string" % kind)
    if len(value) > limit:
        raise InputError("%s %s is %d characters long; the service allows at most %d"
                         % (kind, _describe(value[:40] + "..."), len(value), limit))
    if ".." in value or not pattern.fullmatch(value):
        raise InputError("%s %s is not a valid name: use %s" % (kind, _describe(value), allowed))
    return value


# Jinja2's statement, expression and comment markers: a host name is templated wherever a task uses
# inventory_hostname, and ansible-core before 2.19 evaluates what it finds there.
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def check_host_name(value):
    """A host name built from the service's names (or by hostname_template): non-empty, no template marker,
    no control or invisible character."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("the host name %s is empty" % _describe(value))
    if any(marker in value for marker in _TEMPLATE_MARKERS):
        raise InputError("the host name %s holds a template marker ({{, {%% or {#), which Ansible would evaluate"
                         % _describe(value))
    if shown(value) != value or value != value.strip():
        raise InputError("the host name %s holds control, invisible or surrounding space characters" % _describe(value))
    return value


def check_slot(value):
    if not isinstance(value, str) or value.lower() not in SLOTS:
        raise InputError("deployment_slot %s is not a slot: use production or staging" % _describe(value))
    return value.lower()


def check_subscription_id(value):
    if not value:
        raise InputError("no subscription_id given: set subscription_id or AZURE_SUBSCRIPTION_ID")
    if not isinstance(value, str) or not GUID_RE.fullmatch(value.strip()):
        raise InputError("subscription_id %s is not a GUID (like 3f2b3c1e-0000-4000-8000-000000000001)"
                         % _describe(value))
    return value.strip().lower()


def check_request_id(value):
    if not isinstance(value, str) or not REQUEST_ID_RE.match(value.strip()):
        raise InputError("request_id %s is not an operation id: expected 32 hex digits or a GUID" % _describe(value))
    return value.strip().replace("-", "").lower()


_URL_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")
# A host name (letters, digits, '-', '_', '.') or a bracketed IPv6 address: nothing a parser could read two ways.
_URL_HOST_RE = re.compile(r"^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|[0-9a-f:.]+)$")


def check_url(url, what, schemes=("https",), own_service=False, allow_query=False):
    """``url`` checked whole before anything is sent: one of ``schemes``, a host, a valid port, no control
    characters, spaces, backslashes or other non-ASCII characters, and read alike by urllib.parse (this check,
    ansible's open_url) and urllib3 (what requests connects with). The service's endpoint takes no user,
    password, query or fragment (a redirect's Location, ``allow_query``, may carry a query); a URL of the user's
    ``own_service`` (the health gate's) may carry them, and they are used. Messages never show a password."""
    shown = redact_credentials(url)
    wanted = " or ".join("%s://" % scheme for scheme in schemes)
    if not isinstance(url, str) or _URL_CONTROL_RE.search(url):
        raise InputError("%s %r must be an %s URL without spaces or control characters" % (what, shown, wanted))
    if "\\" in url or not url.isascii():
        # urllib3 ends the host at a backslash, urllib.parse does not: the two would connect to different hosts.
        raise InputError("%s %r must not contain a backslash or non-ASCII characters (percent-encode them, and "
                         "write a host name in its xn-- form)" % (what, shown))
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "https://[::1", a port of 99999 or "abc"
        if "@" in url:  # the reason could quote part of a password
            raise InputError("%s %r is not a valid URL (a user or password in it must be percent-encoded)"
                             % (what, shown)) from None
        raise InputError("%s %r is not a valid URL: %s" % (what, shown, exc)) from None
    if "@" in authority and "@" not in parts.netloc:
        # "user:p#ss@host" reads as host "user" with the rest a fragment: the password would go out as a path.
        raise InputError("%s %r is not a valid URL (a user or password in it must be percent-encoded)" % (what, shown))
    if parts.scheme.lower() not in schemes or not parts.hostname or port == 0:
        why = "" if own_service else ": the service authenticates the client certificate over TLS only"
        raise InputError("%s %r must be an %s URL with a host and a port other than 0%s" % (what, shown, wanted, why))
    if not _URL_HOST_RE.match(parts.hostname):
        raise InputError("%s %r has a host that is not a DNS name or an IP address" % (what, shown))
    if not own_service and (parts.username is not None or parts.password is not None):
        raise InputError("%s %r must not carry a user or password: the service authenticates by the management "
                         "certificate only" % (what, shown))
    if not own_service and (parts.fragment or (parts.query and not allow_query)):
        raise InputError("%s %r must not carry a query or fragment" % (what, shown))
    _check_read_alike(url, parts, port, what, shown)
    return url


def _check_read_alike(url, parts, port, what, shown):
    """Refuse ``url`` when urllib3 (which requests connects with) reads another scheme, host, port or user part
    than urllib.parse did: the check above would have approved one host and the request gone to another."""
    try:
        from urllib3.util import parse_url
        from urllib3.exceptions import LocationParseError
    except ImportError:  # no urllib3, so no requests: only urllib (ansible's open_url) will ever connect
        return
    try:
        other = parse_url(url)
    except LocationParseError:
        other = None
    mine = (parts.scheme.lower(), parts.hostname.lower(), port, "@" in parts.netloc)
    if other is None or mine != ((other.scheme or "").lower(), (other.host or "").strip("[]").lower(), other.port,
                                 other.auth is not None):
        raise InputError("%s %r is read differently by the URL parsers of Python and urllib3 (it would be checked "
                         "for one host and sent to another): write it plainly, as https://host[:port]/path" % (what, shown))

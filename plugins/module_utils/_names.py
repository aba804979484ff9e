# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of names and ids before they go into a URL, so bad input never reaches the service."""

from __future__ import annotations

import re

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError

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

# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module and plugin: their argument spec, their checks (before any
request), and the client built from them. Private to this collection."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError

CLOUD_ENDPOINTS = {
    "AzureCloud": "https://management.core.windows.net",
    "AzureChinaCloud": "https://management.core.chinacloudapi.cn",
    "AzureUSGovernment": "https://management.core.usgovcloudapi.net",
    "AzureGermanCloud": "https://management.core.cloudapi.de",
}
# Each cloud's management host: a redirect from an endpoint of that cloud may lead to it or to one of its
# regional front ends (ussouth2.management.core.windows.net), and nowhere else. The cloud's whole domain is not
# trusted: core.windows.net also holds hosts that customers own, such as <account>.blob.core.windows.net.
MANAGEMENT_HOSTS = tuple(urlsplit(url).hostname for url in CLOUD_ENDPOINTS.values())
DEFAULT_API_VERSION = "2014-10-01"
OLDEST_API_VERSION = "2010-10-28"
MAX_TIMEOUT = 3600
MAX_WAIT_TIMEOUT = 86400
MAX_RETRIES = 20

CONNECTION_ARGUMENT_SPEC = dict(
    subscription_id=dict(type="str", fallback=(env_fallback, ["AZURE_SUBSCRIPTION_ID"])),
    management_certificate=dict(type="path", aliases=["management_cert_path"],
                                fallback=(env_fallback, ["AZURE_CERT_PATH"])),
    certificate_password=dict(type="str", no_log=True, fallback=(env_fallback, ["AZURE_CERT_PASSWORD"])),
    management_url=dict(type="str", fallback=(env_fallback, ["AZURE_MANAGEMENT_URL"])),
    cloud_environment=dict(type="str", choices=list(CLOUD_ENDPOINTS),
                           fallback=(env_fallback, ["AZURE_CLOUD_ENVIRONMENT"])),
    ca_path=dict(type="path", fallback=(env_fallback, ["AZURE_CA_PATH"])),
    validate_certs=dict(type="bool", default=True),
    api_version=dict(type="str", default=DEFAULT_API_VERSION),
    timeout=dict(type="int", default=60),
    retries=dict(type="int", default=5),
    use_proxy=dict(type="bool", default=True, fallback=(env_fallback, ["AZURE_USE_PROXY"])),
)

WAIT_TIMEOUT_SPEC = dict(wait_timeout=dict(type="int", default=1200))

# ASCII digits only, and the whole value: "\d" takes other scripts' digits and "$" a trailing newline.
_VERSION_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_management_url(url, source="management_url"):
    """The endpoint URL, checked whole before any request: https, a host, a valid port, nothing else.
    Credentials in it are refused (the service authenticates by certificate only) and never echoed. A path is
    refused too: every request's path (/<subscription id>/services/...) would follow it, and the service answers
    such a request 403, which reads like a certificate problem."""
    url = names.check_url(url, source)
    if urlsplit(url).path.strip("/"):
        raise InputError("%s %r must be the endpoint's address alone, https://host[:port], without a path (like "
                         "https://management.core.windows.net): the subscription id and the request's path follow "
                         "it" % (source, url))
    return url.rstrip("/")


def check_connection_options(options):
    """Validate the connection options; returns them normalised. Raises InputError, sends nothing."""
    opts = dict(options)
    api_version = opts.get("api_version") or DEFAULT_API_VERSION
    if not isinstance(api_version, str) or not _VERSION_RE.fullmatch(api_version):
        raise InputError("api_version %r is not a date like 2014-10-01" % api_version)
    if api_version < OLDEST_API_VERSION:
        raise InputError("api_version %s is too old: role-instance operations need %s or later"
                         % (api_version, OLDEST_API_VERSION))
    opts["api_version"] = api_version
    timeout = opts.get("timeout")
    if not _is_int(timeout) or not 1 <= timeout <= MAX_TIMEOUT:
        raise InputError("timeout %r must be between 1 and %d seconds, a whole number" % (timeout, MAX_TIMEOUT))
    retries = opts.get("retries")
    if not _is_int(retries) or not 0 <= retries <= MAX_RETRIES:
        raise InputError("retries %r must be between 0 and %d, a whole number" % (retries, MAX_RETRIES))
    if opts.get("management_url"):
        opts["management_url"] = check_management_url(opts["management_url"])
    if opts.get("subscription_id"):
        opts["subscription_id"] = names.check_subscription_id(opts["subscription_id"])
    return opts


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_wait_timeout(value, name="wait_timeout"):
    if not _is_int(value) or not 0 <= value <= MAX_WAIT_TIMEOUT:
        raise InputError("%s %r must be between 0 and %d seconds" % (name, value, MAX_WAIT_TIMEOUT))
    return value


def build_client(options, warn=None, poll=None, rate_limiter=None):
    """A ServiceManagementClient from validated connection options (module params or plugin options); ``poll``
    (a PollSchedule) and ``rate_limiter`` are a roll's, for its waits and its request-rate ceiling."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._client import ServiceManagementClient
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._credentials import (
        load_management_certificate)
    opts = check_connection_options(options)
    certificate = load_management_certificate(opts.get("management_certificate"), opts.get("certificate_password"),
                                              opts.get("subscription_id"))
    subscription_id = opts.get("subscription_id") or certificate.subscription_id
    subscription_id = names.check_subscription_id(subscription_id)
    if opts.get("management_url"):
        url = opts["management_url"]
    elif opts.get("cloud_environment"):
        url = CLOUD_ENDPOINTS[opts["cloud_environment"]]
    elif certificate.management_url:
        url = check_management_url(certificate.management_url,
                                   "the management URL in publishsettings file %s" % certificate.path)
    else:
        url = CLOUD_ENDPOINTS["AzureCloud"]
    if not opts.get("validate_certs", True) and warn:
        warn("validate_certs is false: the identity of %s is not verified, and the management certificate "
             "could be presented to an impostor" % urlsplit(url).netloc)
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    trusted = [management for management in MANAGEMENT_HOSTS if host.endswith("." + management.split(".", 1)[1])]
    use_proxy = opts.get("use_proxy")
    return ServiceManagementClient(subscription_id, certificate, url, api_version=opts["api_version"],
                                   timeout=opts["timeout"], validate_certs=opts.get("validate_certs", True),
                                   ca_path=opts.get("ca_path"), retries=opts["retries"], warn=warn,
                                   use_proxy=True if use_proxy is None else use_proxy, redirect_hosts=trusted,
                                   poll=poll, rate_limiter=rate_limiter)

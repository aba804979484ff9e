# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module; their argument spec is CONNECTION_ARGUMENT_SPEC in
    # plugins/module_utils/_connection.py.
    DOCUMENTATION = r"""
options:
  subscription_id:
    description:
      - The subscription that owns the cloud services, a GUID.
      - Falls back to the E(AZURE_SUBSCRIPTION_ID) environment variable.
      - May be omitted when O(management_certificate) is a publishsettings file that holds one subscription.
    type: str
  management_certificate:
    description:
      - Path to the management certificate used for mutual TLS.
      - A PEM file with the certificate and its private key, a PKCS#12 file (C(.pfx), C(.p12)) or its base64 text
        (as an AWX credential holds it), or a C(.publishsettings) file; the format is detected from the content.
      - Falls back to the E(AZURE_CERT_PATH) environment variable.
      - Key material that must be converted is loaded into memory and never left on disk.
    type: path
    aliases: [management_cert_path]
  certificate_password:
    description:
      - Password of a PKCS#12 file or of an encrypted PEM private key.
      - Falls back to the E(AZURE_CERT_PASSWORD) environment variable.
    type: str
  management_url:
    description:
      - Address of the Service Management endpoint, C(https://host[:port]). Must be C(https://), without a path,
        user, password, query, fragment, backslash or non-ASCII character, and read alike by Python's and
        urllib3's URL parsers.
      - Overrides O(cloud_environment) and the URL of a publishsettings file.
      - Falls back to the E(AZURE_MANAGEMENT_URL) environment variable.
    type: str
  cloud_environment:
    description:
      - Selects the endpoint of a sovereign cloud when O(management_url) is not set.
      - Falls back to the E(AZURE_CLOUD_ENVIRONMENT) environment variable.
      - Without it, the URL of a publishsettings file, else V(AzureCloud), is used.
    type: str
    choices: [AzureCloud, AzureChinaCloud, AzureUSGovernment, AzureGermanCloud]
  ca_path:
    description:
      - CA bundle used to verify the server certificate, instead of the system store.
      - Without it the system store is used, which E(SSL_CERT_FILE) and E(SSL_CERT_DIR) can point elsewhere.
        E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) are not consulted.
      - Falls back to the E(AZURE_CA_PATH) environment variable; an empty value means the system store.
    type: path
  validate_certs:
    description:
      - Verify the server certificate. Setting V(false) warns on every run.
    type: bool
    default: true
  api_version:
    description:
      - The C(x-ms-version) header sent. Versions older than V(2010-10-28) are refused.
    type: str
    default: '2014-10-01'
  timeout:
    description:
      - How long one HTTP request may take in all, in seconds (1 to 3600), connecting, sending and reading the
        whole answer. An answer still arriving when it runs out is cut off, however slowly it trickles in.
      - Connecting (TCP, a proxy's tunnel and the TLS handshake) may take at most 15 seconds of it.
    type: int
    default: 60
  retries:
    description:
      - How many times a request that failed with 500, 503 or a connection error is retried, with
        jittered exponential backoff (0 to 20). A refused TLS handshake or a proxy refusing the connection is
        not retried.
      - A request whose answer was lost after it was sent is never re-sent blindly; see the notes.
    type: int
    default: 5
  use_proxy:
    description:
      - Connect through the proxy named by the E(HTTPS_PROXY) (or E(https_proxy)) environment variable, unless
        E(NO_PROXY) (or E(no_proxy)) covers the endpoint's host, as M(ansible.builtin.uri) does.
      - If V(false), connect directly whatever the environment says.
      - Falls back to the E(AZURE_USE_PROXY) environment variable.
    type: bool
    default: true
notes:
  - Environment variables are read on the host that runs the module; run these modules on the controller
    (with C(connection=local) or C(delegate_to=localhost)).
  - A mutating request that gets 409 C(ConflictError) because another operation holds the deployment's lock
    waits for that operation to end, within the wait budget of the module, and is then sent again, unless the
    service's history shows that operation was the same one on the same instance, started by another client;
    that one is followed (with a warning) instead of sending a second one.
  - When the answer to a mutating request is lost, the operation is looked up with List Subscription Operations
    and adopted if the service started it; it is sent again only when the service shows no such operation. The
    lookup is on the service's clock (the C(Date) header of its answers), so a controller clock minutes off changes
    nothing; an entry that could be the operation but whose id or start time cannot be used fails the task
    (C(AmbiguousRequest)) and nothing is sent again.
"""

    # How requests travel, for modules and plugins alike (extended together with DOCUMENTATION or PLUGINS).
    TRANSPORT = r"""
options: {}
notes:
  - HTTPS is done with C(requests), reusing kept-alive connections across requests. Through a proxy the
    connection is a C(CONNECT) tunnel, so TLS and the management certificate still go end to end with the
    service; O(ca_path) and O(validate_certs) apply to the service's certificate. A C(.netrc) file is not read
    and the proxy's credentials are never shown in messages.
  - A C(307) or C(308) redirect is followed only to the endpoint's own host or to its cloud's management host
    and that host's regional front ends (for example C(management.core.windows.net) and
    C(ussouth2.management.core.windows.net)); the management certificate is never presented to any other host,
    nor to a C(Location) that Python's and urllib3's URL parsers read differently.
  - Answers are read up to 8 MiB (after any decompression; C(identity) encoding is asked for) and fail with
    C(ResponseTooLarge) beyond. An answer that is not the service's XML fails with C(BadResponse).
requirements:
  - requests
  - cryptography (only for PKCS#12 and publishsettings files)
"""

    # The same options for inventory plugins, which read environment variables through ``env:`` entries.
    PLUGINS = r"""
options:
  subscription_id:
    description:
      - The subscription that owns the cloud services, a GUID.
      - May be omitted when O(management_certificate) is a publishsettings file that holds one subscription.
    type: str
    env:
      - name: AZURE_SUBSCRIPTION_ID
  management_certificate:
    description:
      - Path to the management certificate used for mutual TLS, either a PEM file with the certificate and its private
        key, a PKCS#12 file or its base64 text, or a C(.publishsettings) file; the format is detected from the content.
    type: path
    aliases: [management_cert_path]
    env:
      - name: AZURE_CERT_PATH
  certificate_password:
    description: Password of a PKCS#12 file or of an encrypted PEM private key.
    type: str
    env:
      - name: AZURE_CERT_PASSWORD
  management_url:
    description:
      - Address of the Service Management endpoint, C(https://host[:port]). Must be C(https://), without a path,
        user, password, query, fragment, backslash or non-ASCII character, and read alike by Python's and
        urllib3's URL parsers.
      - Overrides O(cloud_environment) and the URL of a publishsettings file.
    type: str
    env:
      - name: AZURE_MANAGEMENT_URL
  cloud_environment:
    description: Selects the endpoint of a sovereign cloud when O(management_url) is not set.
    type: str
    choices: [AzureCloud, AzureChinaCloud, AzureUSGovernment, AzureGermanCloud]
    env:
      - name: AZURE_CLOUD_ENVIRONMENT
  ca_path:
    description:
      - CA bundle used to verify the server certificate, instead of the system store.
      - Without it the system store is used, which E(SSL_CERT_FILE) and E(SSL_CERT_DIR) can point elsewhere.
        E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) are not consulted.
    type: path
    env:
      - name: AZURE_CA_PATH
  validate_certs:
    description: Verify the server certificate. Setting V(false) warns on every run.
    type: bool
    default: true
  api_version:
    description: The C(x-ms-version) header sent. Versions older than V(2010-10-28) are refused.
    type: str
    default: '2014-10-01'
  timeout:
    description:
      - How long one HTTP request may take in all, in seconds (1 to 3600), connecting, sending and reading the
        whole answer. An answer still arriving when it runs out is cut off, however slowly it trickles in.
      - Connecting (TCP, a proxy's tunnel and the TLS handshake) may take at most 15 seconds of it.
    type: int
    default: 60
  retries:
    description: How many times a request that failed with 500, 503 or a connection error is retried, with jittered
      exponential backoff (0 to 20).
    type: int
    default: 5
  use_proxy:
    description:
      - Connect through the proxy named by the E(HTTPS_PROXY) (or E(https_proxy)) environment variable, unless
        E(NO_PROXY) (or E(no_proxy)) covers the endpoint's host, as M(ansible.builtin.uri) does.
      - If V(false), connect directly whatever the environment says.
    type: bool
    default: true
    env:
      - name: AZURE_USE_PROXY
"""

    WAIT = r"""
options:
  wait_timeout:
    description:
      - How long to wait, in seconds, for the operation to end (and, for mutating requests, for another
        operation's lock on the deployment to be released). Measured on a monotonic clock.
      - Polling starts every half second and stretches to a tenth of the time already waited (at most 60 s).
    type: int
    default: 1200
"""

# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module; their argument spec is CONNECTION_ARGUMENT_SPEC in
    # plugins/module_utils/common.py.
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
      - A PEM file with the certificate and its private key, a PKCS#12 file (C(.pfx), C(.p12)), or a
        C(.publishsettings) file; the format is detected from the content.
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
      - Base URL of the Service Management endpoint. Must be C(https://).
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
      - Falls back to the E(AZURE_CA_PATH) environment variable. E(REQUESTS_CA_BUNDLE) is not consulted.
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
      - Timeout of one HTTP request, in seconds (1 to 3600).
    type: int
    default: 60
  retries:
    description:
      - How many times a request that failed with 500, 503 or a connection error is retried, with
        jittered exponential backoff (0 to 20).
      - A request whose answer was lost after it was sent is never re-sent blindly; see the notes.
    type: int
    default: 5
notes:
  - Environment variables are read on the host that runs the module; run these modules on the controller
    (with C(connection=local) or C(delegate_to=localhost)).
  - A mutating request that gets 409 C(ConflictError) because another operation holds the deployment's lock
    waits for that operation to end, within the wait budget of the module, and is then sent again.
  - When the answer to a mutating request is lost, the operation is looked up with List Subscription Operations
    and adopted if the service started it; it is sent again only when the service shows no such operation.
  - HTTPS is done with the Python standard library, reusing kept-alive connections across requests. Requests
    go straight to O(management_url); proxy environment variables and C(REQUESTS_CA_BUNDLE) are not used.
requirements:
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
        key, a PKCS#12 file, or a C(.publishsettings) file; the format is detected from the content.
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
      - Base URL of the Service Management endpoint. Must be C(https://).
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
    description: CA bundle used to verify the server certificate, instead of the system store.
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
    description: Timeout of one HTTP request, in seconds (1 to 3600).
    type: int
    default: 60
  retries:
    description: How many times a request that failed with 500, 503 or a connection error is retried, with jittered
      exponential backoff (0 to 20).
    type: int
    default: 5
requirements:
  - cryptography (only for PKCS#12 and publishsettings files)
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

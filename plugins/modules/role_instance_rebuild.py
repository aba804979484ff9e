#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: role_instance_rebuild
short_description: Rebuild a role instance of an Azure cloud service (classic), wiping its local drives
version_added: 0.1.0
description:
  - Reinstalls the guest operating system of one web or worker role instance and initializes all its local
    drives through the Service Management API (Rebuild Role Instance, C(resources=allLocalDrives)), and by
    default waits for the asynchronous operation to end.
  - Everything on the instance's local drives is lost, local storage resources included. To reinstall the
    guest operating system while trying to keep local storage resources, use
    M(azure_classic.cloud_services.role_instance_reimage); to only restart it,
    M(azure_classic.cloud_services.role_instance_reboot).
  - The deployment is addressed by slot (O(deployment_slot)) or by name (O(deployment_name)).
  - To rebuild many instances without cutting availability (a rolling rebuild), use the
    P(azure_classic.cloud_services.rolling_reimage#role) role with C(rolling_reimage_operation=rebuild).
author:
  - Azure Classic Maintainers (@azure-classic)
extends_documentation_fragment:
  - azure_classic.cloud_services._role_instance_operation
  - azure_classic.cloud_services._deployment_address
  - azure_classic.cloud_services._connection
  - azure_classic.cloud_services._connection.transport
  - azure_classic.cloud_services._connection.wait
  - azure_classic.cloud_services._attributes
  - azure_classic.cloud_services._attributes.actiongroup
attributes:
  check_mode:
    support: full
    details:
      - Checks that the deployment and the instance exist and reports C(changed=true) without sending the rebuild.
  diff_mode:
    support: none
seealso:
  - module: azure_classic.cloud_services.role_instance_reimage
  - module: azure_classic.cloud_services.role_instance_reboot
  - module: azure_classic.cloud_services.operation_status
  - module: azure_classic.cloud_services.deployment_info
"""

EXAMPLES = r"""
- name: Rebuild an instance of the production deployment (local drives are wiped) and wait for the operation
  azure_classic.cloud_services.role_instance_rebuild:
    subscription_id: 3f2b3c1e-0000-4000-8000-000000000001
    management_certificate: /etc/azure/management.pem
    cloud_service: contoso-web
    deployment_slot: production
    role_instance: WebRole1_IN_0
  delegate_to: localhost

- name: Rebuild by deployment name and wait until the instance is ReadyRole again
  azure_classic.cloud_services.role_instance_rebuild:
    cloud_service: contoso-web
    deployment_name: contoso-web-prod
    role_instance: WorkerRole1_IN_2
    wait_for_ready: true
  delegate_to: localhost

- name: Start a rebuild without waiting
  azure_classic.cloud_services.role_instance_rebuild:
    cloud_service: contoso-web
    deployment_slot: staging
    role_instance: WebRole1_IN_1
    wait: false
  delegate_to: localhost
  register: rebuild

- name: Follow the operation later
  azure_classic.cloud_services.operation_status:
    request_id: "{{ rebuild.request_id }}"
    wait: true
  delegate_to: localhost

- name: Preview in check mode (nothing is sent)
  azure_classic.cloud_services.role_instance_rebuild:
    cloud_service: contoso-web
    deployment_slot: production
    role_instance: WebRole1_IN_2
  check_mode: true
  delegate_to: localhost

# Ad hoc, with AZURE_SUBSCRIPTION_ID and AZURE_CERT_PATH exported:
# ansible localhost -m azure_classic.cloud_services.role_instance_rebuild \
#   -a 'cloud_service=contoso-web deployment_slot=production role_instance=WebRole1_IN_0'
"""

RETURN = r"""
request_id:
  description:
    - The operation's request id (C(x-ms-request-id)), 32 hex digits. Null in check mode.
    - Null also when the service accepted the request but sent no valid id (then C(changed) is still true and
      RV(request_id_raw) shows what came).
  returned: always
  type: str
  sample: 904b574f8c60b8cd9906593a7c53b6d5
request_id_raw:
  description: The C(x-ms-request-id) the service sent with its acceptance when it is not an operation id, escaped and
    cut to 80 characters; null when there was none. The operation started all the same.
  returned: when the service accepted the request without a valid request id
  type: str
status:
  description:
    - State of the operation when the module returned, V(InProgress), V(Succeeded) or V(Failed).
    - Null in check mode.
  returned: always
  type: str
  sample: Succeeded
http_status_code:
  description: The HTTP status the operation ended with.
  returned: when the operation ended
  type: int
  sample: 200
error:
  description: The error, when the task failed.
  returned: on failure
  type: dict
  contains:
    code:
      description: Error code from the service (for example C(ResourceNotFound)), or one of the module's own.
      type: str
    message:
      description: The service's message.
      type: str
    http_status:
      description: HTTP status of the failing answer; null for errors found before any request was sent.
      type: int
    request_id:
      description: Request id of the failing request or operation.
      type: str
timed_out:
  description: True when the wait ran out of time; the operation goes on and can be followed with RV(request_id).
  returned: when the wait timed out
  type: bool
cloud_service:
  description: The cloud service addressed.
  returned: always
  type: str
  sample: contoso-web
deployment_name:
  description:
    - Name of the deployment addressed.
    - With O(wait=false) the deployment is not read (the task sends the POST and nothing else), so this is null
      when the deployment was addressed by slot.
  returned: always
  type: str
  sample: contoso-web-prod
deployment_slot:
  description:
    - Slot of the deployment addressed, in lower case.
    - With O(wait=false) this is null when the deployment was addressed by name.
  returned: always
  type: str
  sample: production
role_instance:
  description: The role instance addressed.
  returned: always
  type: str
  sample: WebRole1_IN_0
instance_status:
  description: The instance's status after O(wait_for_ready).
  returned: when O(wait_for_ready=true) and the instance became ready
  type: str
  sample: ReadyRole
"""

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._role_instance_operations import (
    ADDRESS_KWARGS, ROLE_INSTANCE_OPERATION_SPEC, role_instance_operation)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._module_base import ServiceManagementModule


def main():
    module = ServiceManagementModule(ROLE_INSTANCE_OPERATION_SPEC, supports_check_mode=True, **ADDRESS_KWARGS)
    module.run(role_instance_operation("rebuild"))


if __name__ == "__main__":
    main()

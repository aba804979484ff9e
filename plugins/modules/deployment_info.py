#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_info
short_description: Get a cloud service deployment (classic) and its role instances
version_added: 0.1.0
description:
  - Reads Get Deployment by slot or by name and returns the deployment and every role instance with its
    status, power state, upgrade domain and fault domain.
author:
  - Azure Classic Maintainers (@azure-classic)
extends_documentation_fragment:
  - azure_classic.cloud_services._deployment_address
  - azure_classic.cloud_services._connection
  - azure_classic.cloud_services._connection.transport
  - azure_classic.cloud_services._attributes
  - azure_classic.cloud_services._attributes.actiongroup
  - azure_classic.cloud_services._attributes.info_module
seealso:
  - module: azure_classic.cloud_services.role_instance_reimage
"""

EXAMPLES = r"""
- name: Read the production deployment
  azure_classic.cloud_services.deployment_info:
    cloud_service: contoso-web
    deployment_slot: production
  delegate_to: localhost
  register: prod

- name: List the instances that are not ready
  ansible.builtin.debug:
    msg: "{{ prod.role_instances | rejectattr('instance_status', 'eq', 'ReadyRole') | map(attribute='instance_name') | list }}"

# Ad hoc:
# ansible localhost -m azure_classic.cloud_services.deployment_info -a 'cloud_service=contoso-web deployment_name=contoso-web-prod'
"""

RETURN = r"""
deployment:
  description: The deployment.
  returned: success
  type: dict
  contains:
    name:
      description: Deployment name.
      type: str
      sample: contoso-web-prod
    slot:
      description: Slot, in lower case.
      type: str
      sample: production
    status:
      description: Deployment status, for example C(Running) or C(RunningTransitioning).
      type: str
      sample: Running
    locked:
      description: True while an operation holds the deployment's write lock.
      type: bool
    upgrade_domain_count:
      description: Number of upgrade domains in use.
      type: int
      sample: 3
    roles:
      description: Role names.
      type: list
      elements: str
      sample: [WebRole1, WorkerRole1]
    private_id:
      description: The deployment's private id.
      type: str
    url:
      description: Public URL of the deployment.
      type: str
    sdk_version:
      description: Azure SDK version the package was built with.
      type: str
    created_time:
      description: Creation time (UTC).
      type: str
    last_modified_time:
      description: Last modification time (UTC).
      type: str
role_instances:
  description: The role instances of the deployment.
  returned: success
  type: list
  elements: dict
  contains:
    role_name:
      description: Role of the instance.
      type: str
      sample: WebRole1
    instance_name:
      description: Instance name.
      type: str
      sample: WebRole1_IN_0
    instance_status:
      description: Instance status, for example C(ReadyRole), C(BusyRole) or C(StoppingRole).
      type: str
      sample: ReadyRole
    power_state:
      description: C(Started), C(Starting), C(Stopping), C(Stopped) or C(Unknown).
      type: str
      sample: Started
    upgrade_domain:
      description: Upgrade domain of the instance.
      type: int
      sample: 0
    fault_domain:
      description: Fault domain of the instance.
      type: int
      sample: 0
    instance_size:
      description: Size of the instance.
      type: str
      sample: Small
    ip_address:
      description: Internal IP address.
      type: str
      sample: 10.0.0.4
    instance_state_details:
      description: What the service says about a problem with the instance, if anything.
      type: str
    host_name:
      description: Host name; only virtual machine roles have one.
      type: str
"""

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._role_instance_operations import (
    ADDRESS_KWARGS, ADDRESS_SPEC, deployment_info)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._module_base import ServiceManagementModule


def main():
    module = ServiceManagementModule(dict(ADDRESS_SPEC), supports_check_mode=True, **ADDRESS_KWARGS)
    module.run(deployment_info)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: operation_status
short_description: Get the state of an asynchronous Service Management operation, optionally waiting for it
version_added: 0.1.0
description:
  - Reads Get Operation Status for a request id returned by an asynchronous request, such as
    M(azure_classic.cloud_services.role_instance_reimage) with O(azure_classic.cloud_services.role_instance_reimage#module:wait=false).
  - With O(wait=true) polls until the operation is no longer C(InProgress).
  - Every call asks the service; nothing is cached.
author:
  - Azure Classic Maintainers (@azure-classic)
options:
  request_id:
    description: The operation's request id, as 32 hex digits or in GUID form.
    type: str
    required: true
  wait:
    description: Wait until the operation has ended.
    type: bool
    default: false
  fail_on_failed:
    description: Fail the task when the operation ended C(Failed). With V(false) the result says so instead.
    type: bool
    default: true
extends_documentation_fragment:
  - azure_classic.cloud_services._connection
  - azure_classic.cloud_services._connection.transport
  - azure_classic.cloud_services._connection.wait
  - azure_classic.cloud_services._attributes
  - azure_classic.cloud_services._attributes.actiongroup
  - azure_classic.cloud_services._attributes.info_module
seealso:
  - module: azure_classic.cloud_services.role_instance_reimage
"""

EXAMPLES = r"""
- name: Read the state of an operation
  azure_classic.cloud_services.operation_status:
    request_id: 904b574f8c60b8cd9906593a7c53b6d5
  delegate_to: localhost
  register: operation

- name: Wait up to ten minutes for it, without failing when it failed
  azure_classic.cloud_services.operation_status:
    request_id: "{{ operation.request_id }}"
    wait: true
    wait_timeout: 600
    fail_on_failed: false
  delegate_to: localhost
  register: final

- name: Report a failure
  ansible.builtin.debug:
    msg: "{{ final.error.code }}: {{ final.error.message }}"
  when: final.operation_failed

# Ad hoc:
# ansible localhost -m azure_classic.cloud_services.operation_status -a 'request_id=904b574f8c60b8cd9906593a7c53b6d5 wait=true'
"""

RETURN = r"""
request_id:
  description: The request id, normalised to 32 lower-case hex digits.
  returned: always
  type: str
  sample: 904b574f8c60b8cd9906593a7c53b6d5
status:
  description: V(InProgress), V(Succeeded) or V(Failed).
  returned: when the service answered
  type: str
  sample: Succeeded
http_status_code:
  description: HTTP status the operation ended with; null while it is in progress.
  returned: when the service answered
  type: int
  sample: 200
error:
  description:
    - For a C(Failed) operation, its C(code) and C(message); for a failed task, also C(http_status) and C(request_id).
    - Null when the operation did not fail.
  returned: when the service answered
  type: dict
  sample: {"code": "InternalError", "message": "The server encountered an internal error. Please retry the request."}
done:
  description: True when the operation has ended.
  returned: when the service answered
  type: bool
succeeded:
  description: True when the operation Succeeded.
  returned: when the service answered
  type: bool
operation_failed:
  description:
    - True when the operation Failed.
    - Not named C(failed) because Ansible reads that key as the task's own outcome, which would fail the
      task even with O(fail_on_failed=false).
  returned: when the service answered
  type: bool
timed_out:
  description: True when O(wait=true) ran out of time while the operation was still in progress.
  returned: when the service answered
  type: bool
"""

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._role_instance_operations import operation_status
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import WAIT_TIMEOUT_SPEC
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._module_base import ServiceManagementModule


def main():
    argument_spec = dict(
        request_id=dict(type="str", required=True),
        wait=dict(type="bool", default=False),
        fail_on_failed=dict(type="bool", default=True),
        **WAIT_TIMEOUT_SPEC
    )
    module = ServiceManagementModule(argument_spec, supports_check_mode=True)
    module.run(operation_status)


if __name__ == "__main__":
    main()

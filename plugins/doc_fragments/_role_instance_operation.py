# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options role_instance_reimage, role_instance_reboot and role_instance_rebuild share; their body is
    # role_instance_operation() in plugins/module_utils/_role_instance_operations.py.
    DOCUMENTATION = r"""
options:
  role_instance:
    description: Name of the role instance, for example C(WebRole1_IN_0).
    type: str
    required: true
    aliases: [instance_name]
  wait:
    description:
      - Wait until the operation has ended (Succeeded or Failed).
      - With V(false) the module returns as soon as the service accepted the request; follow it with
        M(azure_classic.cloud_services.operation_status).
    type: bool
    default: true
  wait_for_ready:
    description:
      - After the operation succeeded, also wait until the instance reports C(ReadyRole) again.
      - Fails at once when the instance reaches a state it does not leave by itself (for example C(FailedStartingRole)).
      - Only with O(wait=true).
    type: bool
    default: false
  ready_timeout:
    description: How long to wait, in seconds, for C(ReadyRole) when O(wait_for_ready=true).
    type: int
    default: 1200
"""

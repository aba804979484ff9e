# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a module addresses a deployment; the argument spec is ADDRESS_SPEC in plugins/module_utils/_role_instance_operations.py.
    DOCUMENTATION = r"""
options:
  cloud_service:
    description: Name of the cloud service (hosted service).
    type: str
    required: true
    aliases: [service_name]
  deployment_slot:
    description:
      - Slot of the deployment, V(production) or V(staging) (any case).
      - Exactly one of O(deployment_slot) and O(deployment_name) is required.
    type: str
  deployment_name:
    description: Name of the deployment.
    type: str
"""

# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a roll and its instances are called: the target a host stands for, the roll's id (from the instances as the
service names them, and the operation), and an instance's key in the roll's state."""

from __future__ import annotations

import hashlib

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.kinds import DEFAULT_KIND, words


def target_from_hostvars(host, hostvars):
    """The instance a host stands for, from the variables the inventory plugin sets."""
    missing = [v for v in ("cloud_service", "role_instance") if not hostvars.get(v)]
    if not (hostvars.get("deployment_slot") or hostvars.get("deployment_name")):
        missing.append("deployment_slot or deployment_name")
    if missing:
        raise InputError("host %s does not name a role instance: it needs cloud_service, role_instance and "
                         "deployment_slot or deployment_name (missing: %s)" % (host, ", ".join(missing)))
    target = {
        "host": host,
        "cloud_service": names.check_name("cloud_service", hostvars["cloud_service"]),
        "role_instance": names.check_name("role_instance", hostvars["role_instance"]),
        "deployment_name": None, "deployment_slot": None,
    }
    if hostvars.get("deployment_name"):
        target["deployment_name"] = names.check_name("deployment_name", hostvars["deployment_name"])
    else:
        target["deployment_slot"] = names.check_slot(hostvars["deployment_slot"])
    return target


def roll_id(targets, kind=DEFAULT_KIND):
    """A roll is identified by the instances it targets, as the service names them (deployment name, not slot; in
    any letter case), and its operation: the same job run anywhere, or spelled another way, is the same roll, and
    a rolling reboot of instances just reimaged is a roll of its own. ``targets``: the planned instances
    (cloud_service, deployment_name, instance), or targets as hosts give them."""
    parts = sorted("%s/%s/%s" % (t["cloud_service"], t.get("deployment_name") or t.get("deployment_slot"),
                                 t.get("instance") or t.get("role_instance")) for t in targets)
    if kind != DEFAULT_KIND:
        parts.insert(0, "operation=" + words(kind)["verb"])
    return hashlib.sha256("\n".join(parts).lower().encode("utf-8")).hexdigest()[:16]


def instance_key(dep_key, instance):
    return "%s/%s" % (dep_key, instance.lower())

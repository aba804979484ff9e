# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: role_instances
short_description: Role instances of Azure cloud services (classic) as Ansible hosts
version_added: 0.1.0
description:
  - One host per role instance of the subscription's cloud services, read from the Service Management API, with
    the host variables the P(azure_classic.cloud_services.rolling_reimage#role) role reads.
  - The configuration file name must end with C(role_instances.yml) or C(role_instances.yaml).
  - Host names are C(<cloud_service>.<deployment_slot>.<role_instance>) unless O(hostname_template) says otherwise.
  - Every name from the service (cloud service, deployment, role, role instance) must follow the service's naming
    rules, and a host name (also one from O(hostname_template)) must hold no template marker (C({{), C({%), C({#))
    and no control or invisible character, since ansible-core 2.16 to 2.18 template C(inventory_hostname). A role
    instance that fails is left out with a warning naming it; it never becomes a host.
  - Host variables C(cloud_service), C(deployment_name), C(deployment_slot), C(cloud_role) (the role, such as
    C(WebRole1)), C(role_instance), C(upgrade_domain), C(fault_domain), C(instance_status), C(power_state),
    C(instance_size) and C(ip_address). None is an Ansible reserved or internal variable name, so
    C(ansible-inventory --list) and AWX inventory syncs keep them all.
  - Every host also gets C(ansible_connection=local), since every API call runs on the controller; set another
    value with O(compose).
  - Default groups, named safely for Ansible, C(cloud_service_<name>), C(slot_<slot>), C(role_<role>) and
    C(upgrade_domain_<n>); add others with O(keyed_groups) and O(groups).
  - Deployments are read concurrently, with at most O(max_connections) connections.
  - The instance status is a snapshot taken when the inventory was built (or cached). The rolling_reimage role
    never trusts it for its safety checks; it reads every deployment live.
author:
  - Azure Classic Maintainers (@azure-classic)
options:
  plugin:
    description: Marks this file as a configuration of this plugin.
    type: str
    required: true
    choices: [azure_classic.cloud_services.role_instances]
  cloud_services:
    description: The cloud services to read; by default every cloud service of the subscription (List Cloud Services).
    type: list
    elements: str
    default: []
  slots:
    description: Deployment slots to include.
    type: list
    elements: str
    choices: [production, staging]
    default: [production, staging]
  role_names:
    description: Only instances of these roles; by default every role.
    type: list
    elements: str
    default: []
  instance_statuses:
    description: Only instances in one of these statuses (for example C(ReadyRole)); by default every status.
    type: list
    elements: str
    default: []
  hostname_template:
    description:
      - Jinja2 template of the host name, evaluated with the host variables.
      - The default is equivalent to C({{ cloud_service }}.{{ deployment_slot }}.{{ role_instance }}) and does not
        need templating, which keeps large inventories fast.
    type: str
  max_connections:
    description: How many deployments are read at the same time.
    type: int
    default: 8
extends_documentation_fragment:
  - azure_classic.cloud_services._connection.plugins
  - azure_classic.cloud_services._connection.transport
  - constructed
  - inventory_cache
"""

EXAMPLES = r"""
# contoso.role_instances.yml, used as: ansible-inventory -i contoso.role_instances.yml --graph
# Connection from AZURE_SUBSCRIPTION_ID and AZURE_CERT_PATH (as an AWX credential injects them).
plugin: azure_classic.cloud_services.role_instances
cloud_services: [contoso-web]
slots: [production]
keyed_groups:
  - key: instance_status
    prefix: status
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ansible-role-instances
cache_timeout: 300

# Every cloud service, worker roles only, explicit connection options and a custom host name
# plugin: azure_classic.cloud_services.role_instances
# subscription_id: 3f2b3c1e-0000-4000-8000-000000000001
# management_certificate: /etc/azure/management.pem
# role_names: [WorkerRole1]
# hostname_template: "{{ deployment_name }}-{{ role_instance }}"
# compose:
#   ansible_host: ip_address
"""

import concurrent.futures
import os
import re
import threading

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import CONNECTION_ARGUMENT_SPEC, build_client
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AzureClassicError, InputError, shown

# None of these is an Ansible reserved or internal name (role_name, for one, is both): tested.
HOST_VARIABLES = ("cloud_service", "deployment_name", "deployment_slot", "cloud_role", "role_instance",
                  "upgrade_domain", "fault_domain", "instance_status", "power_state", "instance_size", "ip_address")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
# Checked against the service's naming rules before a record becomes a host.
NAMES_FROM_THE_SERVICE = (("cloud_service", "cloud_service"), ("deployment_name", "deployment_name"),
                          ("role_name", "cloud_role"), ("role_instance", "role_instance"))


def safe_group(prefix, value):
    return "%s_%s" % (prefix, _UNSAFE.sub("_", str(value)))


def instances_of(service, deployment):
    """Host variables for every role instance of a parsed deployment."""
    for inst in deployment["role_instances"]:
        yield {
            "cloud_service": service, "deployment_name": deployment["name"], "deployment_slot": deployment["slot"],
            "cloud_role": inst["role_name"], "role_instance": inst["instance_name"],
            "upgrade_domain": inst["upgrade_domain"], "fault_domain": inst["fault_domain"],
            "instance_status": inst["instance_status"], "power_state": inst["power_state"],
            "instance_size": inst["instance_size"], "ip_address": inst["ip_address"],
        }


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "azure_classic.cloud_services.role_instances"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("role_instances.yml", "role_instances.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        records = None
        if use_cache:
            try:
                records = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if records and "cloud_role" not in records[0]:
            records, update_cache = None, True  # cached by a release that used other variable names
        if records is None:
            records = self._fetch()
        if update_cache:
            self._cache[cache_key] = records
        self._populate(records)

    # -- reading the API ------------------------------------------------------------
    def _fetch(self):
        options = {name: self.get_option(name) for name in CONNECTION_ARGUMENT_SPEC}
        # An empty AZURE_CA_PATH (an AWX credential without a CA bundle) means "not set", as it does for the modules:
        # the configuration would turn it into the current folder.
        origin = self.get_option_and_origin("ca_path")[1]
        if isinstance(origin, str) and origin.startswith("env: ") and not os.environ.get(origin[5:].strip()):
            options["ca_path"] = None
        local = threading.local()
        clients = []
        lock = threading.Lock()

        def client():
            if not hasattr(local, "client"):
                local.client = build_client(options, warn=self.display.warning)
                with lock:
                    clients.append(local.client)
            return local.client

        def read(service):
            return service, client().get_cloud_service(service, embed_detail=True)

        try:
            services = [names.check_name("cloud_service", name) for name in self.get_option("cloud_services")]
            if not services:
                services = self._listed_services(client().list_cloud_services())
            records = []
            failures = []
            workers = max(1, min(self.get_option("max_connections"), len(services) or 1))
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(read, name): name for name in services}
                for future in concurrent.futures.as_completed(futures):
                    name = futures[future]
                    try:
                        service, details = future.result()
                    except InputError:
                        raise  # found before any request (the options, the certificate): the same for every service
                    except AzureClassicError as err:
                        failures.append((name, err))
                        continue
                    for deployment in details["deployments"] or []:
                        records.extend(instances_of(details["name"] or service, deployment))
        except AzureClassicError as err:
            raise AnsibleParserError("role_instances inventory: %s" % err.readable()) from None
        finally:
            for each in clients:
                each.close()
        for name, err in sorted(failures, key=lambda f: f[0]):
            message = "role_instances inventory: cannot read cloud service %s: %s" % (name, err.readable())
            if self.get_option("strict"):
                raise AnsibleParserError(message)
            self.display.warning(message + "; its instances are left out")
        records.sort(key=lambda r: (r["cloud_service"], r["deployment_slot"], r["role_instance"]))
        return records

    def _listed_services(self, listed):
        """Names from List Cloud Services go into URLs, so they are checked like the user's own."""
        services = []
        for service in listed:
            try:
                services.append(names.check_name("cloud_service", service["name"]))
            except InputError as err:
                self.display.warning("role_instances inventory: the service listed a cloud service this plugin "
                                     "cannot address (%s); it is left out" % err.message)
        return services

    # -- building the inventory ---------------------------------------------------------
    def _wanted(self, record):
        slots = [s.lower() for s in self.get_option("slots")]
        roles = self.get_option("role_names")
        statuses = self.get_option("instance_statuses")
        return (record["deployment_slot"] in slots and (not roles or record["cloud_role"] in roles)
                and (not statuses or record["instance_status"] in statuses))

    def _populate(self, records):
        template = self.get_option("hostname_template")
        strict = self.get_option("strict")
        compose, groups, keyed = self.get_option("compose"), self.get_option("groups"), self.get_option("keyed_groups")
        inventory = self.inventory
        seen_groups = set()
        left_out = {}
        for record in records:
            if not self._wanted(record):
                continue
            # Values from the service or the cache are data: marked unsafe, so no ansible-core (2.16 included)
            # ever evaluates a template hidden in a role name or an edited cache entry.
            record = wrap_var(record)
            try:
                host = self._host_name(record, template)
            except InputError as err:
                left_out.setdefault(err.message, None)
                continue
            if host in inventory.hosts:
                raise AnsibleError("role_instances inventory: two role instances are both named %s; change "
                                   "hostname_template" % host)
            memberships = (safe_group("cloud_service", record["cloud_service"]),
                           safe_group("slot", record["deployment_slot"]),
                           safe_group("role", record["cloud_role"]),
                           safe_group("upgrade_domain", record["upgrade_domain"]))
            for group in memberships:
                if group not in seen_groups:
                    inventory.add_group(group)
                    seen_groups.add(group)
            inventory.add_host(host, group=memberships[0])
            for group in memberships[1:]:
                inventory.add_child(group, host)
            for name in HOST_VARIABLES:
                inventory.set_variable(host, name, record[name])
            # Every API call runs on the controller, so the hosts need no connection; compose may override it.
            inventory.set_variable(host, "ansible_connection", "local")
            if compose:
                self._set_composite_vars(compose, record, host, strict=strict)
            if groups:
                self._add_host_to_composed_groups(groups, record, host, strict=strict)
            if keyed:
                self._add_host_to_keyed_groups(keyed, record, host, strict=strict)
        for message in left_out:
            self.display.warning("role_instances inventory: %s; that role instance is left out" % message)

    def _host_name(self, record, template):
        """The host name of a record whose names follow the service's own rules, or an InputError naming the
        first that does not (the host name becomes inventory_hostname, which ansible-core 2.16 to 2.18 templates)."""
        where = "cloud service %s" % shown(record["cloud_service"])
        try:
            for kind, key in NAMES_FROM_THE_SERVICE:
                names.check_name(kind, record[key])
            names.check_slot(record["deployment_slot"])
            if template:
                self.templar.available_variables = record
                host = self.templar.template(template)
            else:
                host = "%s.%s.%s" % (record["cloud_service"], record["deployment_slot"], record["role_instance"])
            return names.check_host_name(host)
        except InputError as err:
            raise InputError("%s: %s" % (where, err.message)) from None

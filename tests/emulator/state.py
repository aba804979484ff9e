"""The emulated subscription: topology, asynchronous operations, deployment locks and the event log.

Time-driven changes (an operation ending, an instance recovering) are kept in a schedule and applied in
order, at their scheduled time, by ``advance()``; every request calls it first and a ticker thread calls it
in between, so the event log and the availability figures carry exact transition times.
"""
import copy
import heapq
import itertools
import math
import threading
import time
import uuid

DEFAULT_SUBSCRIPTION = "3f2b3c1e-0000-4000-8000-000000000001"
DEFAULT_TOPOLOGY = {
    "subscription_id": DEFAULT_SUBSCRIPTION,
    "cloud_services": [{
        "name": "contoso-web",
        "deployments": [
            {"name": "contoso-web-prod", "slot": "production", "upgrade_domain_count": 3,
             "roles": [{"name": "WebRole1", "instances": 3}, {"name": "WorkerRole1", "instances": 3}]},
            {"name": "contoso-web-staging", "slot": "staging", "upgrade_domain_count": 3,
             "roles": [{"name": "WebRole1", "instances": 3}, {"name": "WorkerRole1", "instances": 3}]},
        ],
    }],
}

# (fraction of operation-seconds, InstanceStatus, PowerState) while the operation is InProgress.
# The real service publishes no PaaS reimage trace; these are documented values in a plausible order.
STATUS_PATHS = {
    "reimage": [(0.0, "StoppingRole", "Stopping"), (0.25, "StoppedVM", "Stopped"),
                (0.5, "StartingVM", "Starting"), (0.75, "StartingRole", "Started")],
    "rebuild": [(0.0, "StoppingRole", "Stopping"), (0.25, "StoppedVM", "Stopped"),
                (0.5, "CreatingVM", "Starting"), (0.75, "StartingRole", "Started")],
    "reboot": [(0.0, "StoppingRole", "Stopping"), (0.5, "StartingRole", "Starting")],
}
OPERATION_NAMES = {"reimage": "ReimageRoleInstance", "reboot": "RebootRoleInstance",
                   "rebuild": "RebuildRoleInstance"}
READY = "ReadyRole"

# Role sizes the service listed in List Cloud Services (recorded March 2015, in the service's order).
WEB_WORKER_ROLE_SIZES = ["A10", "A11", "A5", "A6", "A7", "A8", "A9", "ExtraLarge", "ExtraSmall", "Large", "Medium",
                         "Small", "Standard_D1", "Standard_D11", "Standard_D12", "Standard_D13", "Standard_D14",
                         "Standard_D2", "Standard_D3", "Standard_D4"]
VIRTUAL_MACHINE_ROLE_SIZES = ["A10", "A11", "A5", "A6", "A7", "A8", "A9", "Basic_A0", "Basic_A1", "Basic_A2",
                              "Basic_A3", "Basic_A4", "ExtraLarge", "ExtraSmall", "Large", "Medium", "Small",
                              "Standard_D1", "Standard_D11", "Standard_D12", "Standard_D13", "Standard_D14",
                              "Standard_D2", "Standard_D3", "Standard_D4", "Standard_G1", "Standard_G2", "Standard_G3",
                              "Standard_G4", "Standard_G5"]
# A web role gets the endpoint Visual Studio's template declares; a worker role none.
WEB_ROLE_ENDPOINTS = [{"name": "Endpoint1", "protocol": "http", "port": 80, "local_port": 80}]
ENDPOINT_PROTOCOLS = ("tcp", "udp", "http", "https")
DOWNTIME_SECONDS = 365 * 86400  # the window recorded in 2017 answers: a year from the deployment's creation


class TopologyError(ValueError):
    pass


def _instances_for(service, deployment, role, ud_count, ip_counter):
    count = role.get("instances", 1)
    if not isinstance(count, int) or count < 1:
        raise TopologyError("role %s: instances must be a positive integer" % role.get("name"))
    out = []
    for k in range(count):
        out.append({
            "service": service, "deployment": deployment, "role": role["name"],
            "name": "%s_IN_%d" % (role["name"], k), "upgrade_domain": k % ud_count, "fault_domain": k % 2,
            "size": role.get("size", "Small"), "ip": "10.%d.%d.%d" % next(ip_counter),
            "status": READY, "power_state": "Started", "details": "", "stuck": False,
        })
    return out


def _endpoints(role):
    spec = role.get("endpoints")
    if spec is None:
        return copy.deepcopy(WEB_ROLE_ENDPOINTS) if "web" in str(role.get("name", "")).lower() else []
    if not isinstance(spec, list):
        raise TopologyError("role %s: endpoints must be a list" % role.get("name"))
    out = []
    for endpoint in spec:
        try:
            port = int(endpoint["port"])
            item = {"name": str(endpoint["name"]), "protocol": str(endpoint.get("protocol", "tcp")).lower(),
                    "port": port, "local_port": int(endpoint.get("local_port", port))}
        except (KeyError, TypeError, ValueError):
            raise TopologyError("role %s: every endpoint needs a name and a port" % role.get("name")) from None
        if item["protocol"] not in ENDPOINT_PROTOCOLS:
            raise TopologyError("role %s: endpoint protocol must be one of %s"
                                % (role.get("name"), ", ".join(ENDPOINT_PROTOCOLS)))
        out.append(item)
    return out


def _downtime(dep, created):
    """(start, end, status) of the deployment's PersistentVMDowntime, or None when the topology turns it off."""
    spec = dep.get("persistent_vm_downtime", True)
    if spec is False or spec is None:
        return None
    if spec is True:
        return created, created + DOWNTIME_SECONDS, "PersistentVMUpdateScheduled"
    if not isinstance(spec, dict):
        raise TopologyError("deployment %s: persistent_vm_downtime must be true, false or a mapping" % dep.get("name"))
    try:
        start = float(spec.get("start", created))
        end = float(spec.get("end", start + DOWNTIME_SECONDS))
    except (TypeError, ValueError):
        raise TopologyError("deployment %s: persistent_vm_downtime start and end are epoch seconds"
                            % dep.get("name")) from None
    return start, end, str(spec.get("status", "PersistentVMUpdateScheduled"))


def _compute_capabilities(svc):
    spec = svc.get("compute_capabilities") or {}
    if not isinstance(spec, dict):
        raise TopologyError("cloud service %s: compute_capabilities must be a mapping" % svc.get("name"))
    web = spec.get("web_worker_role_sizes", WEB_WORKER_ROLE_SIZES)
    vms = spec.get("virtual_machines_role_sizes", VIRTUAL_MACHINE_ROLE_SIZES)
    if not isinstance(web, list) or not isinstance(vms, list):
        raise TopologyError("cloud service %s: role sizes must be lists" % svc.get("name"))
    return [str(size) for size in web], [str(size) for size in vms]


def _extended_properties(owner, spec):
    if spec is None:
        return []
    if not isinstance(spec, dict):
        raise TopologyError("%s: extended_properties must be a mapping of names to values" % owner)
    return [(str(k), str(v)) for k, v in spec.items()]


def _ip_counter():
    for n in itertools.count(4):
        yield (n // 65536) % 256, (n // 256) % 256, n % 256


def build_topology(spec):
    """Validate a topology document and expand it into the emulator's model."""
    if not isinstance(spec, dict) or not isinstance(spec.get("cloud_services"), list):
        raise TopologyError("topology needs a 'cloud_services' list")
    subscription = str(spec.get("subscription_id", DEFAULT_SUBSCRIPTION)).lower()
    try:
        uuid.UUID(subscription)
    except ValueError:
        raise TopologyError("subscription_id %r is not a GUID" % subscription) from None
    ips = _ip_counter()
    now = time.time()
    services = {}
    for svc in spec["cloud_services"]:
        name = svc.get("name")
        if not name or name.lower() in services:
            raise TopologyError("every cloud service needs a unique name (got %r)" % name)
        deployments = {}
        for dep in svc.get("deployments", []):
            slot = str(dep.get("slot", "production")).lower()
            if slot not in ("production", "staging"):
                raise TopologyError("deployment %s: slot must be production or staging" % dep.get("name"))
            if any(d["slot"] == slot for d in deployments.values()):
                raise TopologyError("cloud service %s has two %s deployments" % (name, slot))
            ud_count = int(dep.get("upgrade_domain_count", 5))
            if ud_count < 1 or ud_count > 20:
                raise TopologyError("deployment %s: upgrade_domain_count must be 1..20" % dep.get("name"))
            roles = []
            for role in dep.get("roles", []):
                roles.append({"name": role["name"], "endpoints": _endpoints(role),
                              "instances": _instances_for(name, dep["name"], role, ud_count, ips)})
            used_uds = {i["upgrade_domain"] for r in roles for i in r["instances"]}
            deployments[dep["name"].lower()] = {
                "name": dep["name"], "service": name, "slot": slot, "roles": roles,
                "upgrade_domain_count": min(ud_count, max(len(used_uds), 1)),
                "private_id": uuid.uuid4().hex, "created": now, "modified": now, "lock": None,
                "vip": "52.%d.%d.%d" % next(ips), "downtime": _downtime(dep, now),
                "extended_properties": _extended_properties("deployment %s" % dep["name"],
                                                            dep.get("extended_properties")),
            }
        affinity_group = svc.get("affinity_group")
        services[name.lower()] = {"name": name, "location": svc.get("location", "West US"),
                                  "affinity_group": str(affinity_group) if affinity_group else None,
                                  "compute_capabilities": _compute_capabilities(svc),
                                  "extended_properties": _extended_properties("cloud service %s" % name,
                                                                              svc.get("extended_properties")),
                                  "created": now, "deployments": deployments}
    return subscription, services


class Emulator:
    def __init__(self, topology=None, operation_seconds=2.0, recovery_seconds=2.0):
        self.lock = threading.RLock()
        self.operation_seconds = float(operation_seconds)
        self.recovery_seconds = float(recovery_seconds)
        self.list_page_size = 100
        self.load_topology(topology or DEFAULT_TOPOLOGY)

    # -- topology and reset -------------------------------------------------
    def load_topology(self, spec):
        subscription, services = build_topology(spec)
        with self.lock:
            self.topology_spec = copy.deepcopy(spec)
            self.subscription_id = subscription
            self._pristine = services
            self.reset()

    def reset(self):
        with self.lock:
            self.clock_offset = 0.0
            self.services = copy.deepcopy(self._pristine)
            self.operations = {}
            self.operation_order = []
            self.events = []
            self.schedule = []
            self.seq = itertools.count()
            self.availability = {}
            for svc in self.services.values():
                for dep in svc["deployments"].values():
                    self.availability[self._dep_key(dep)] = {
                        "cloud_service": dep["service"], "deployment": dep["name"], "slot": dep["slot"],
                        "unavailable": set(), "max_unavailable_instances": 0,
                        "max_unavailable_upgrade_domains": 0}

    @staticmethod
    def _dep_key(dep):
        return "%s/%s" % (dep["service"], dep["name"])

    def set_timing(self, operation_seconds=None, recovery_seconds=None, list_page_size=None):
        with self.lock:
            if operation_seconds is not None:
                self.operation_seconds = max(0.0, float(operation_seconds))
            if recovery_seconds is not None:
                self.recovery_seconds = max(0.0, float(recovery_seconds))
            if list_page_size is not None:
                self.list_page_size = max(1, int(list_page_size))

    # -- lookups --------------------------------------------------------------
    def service(self, name):
        return self.services.get(name.lower())

    @staticmethod
    def deployment_by_slot(svc, slot):
        for dep in svc["deployments"].values():
            if dep["slot"] == slot.lower():
                return dep
        return None

    @staticmethod
    def deployment_by_name(svc, name):
        return svc["deployments"].get(name.lower())

    @staticmethod
    def instance(dep, name):
        for role in dep["roles"]:
            for inst in role["instances"]:
                if inst["name"].lower() == name.lower():
                    return inst
        return None

    def deployment_view(self, dep):
        """(dep, Status, Locked) as Get Deployment reports them right now."""
        locked = dep["lock"] is not None
        return dep, ("RunningTransitioning" if locked else "Running"), locked

    # -- time -----------------------------------------------------------------
    def now(self):
        """The service's clock: the machine's, moved by ``clock_offset`` (tests set it through the admin API to
        play a service whose clock differs from the controller's). Every time the emulator shows is on it."""
        return time.time() + self.clock_offset

    def set_clock_offset(self, seconds):
        """Move the service's clock; only between tests, with nothing scheduled, so no change lands out of order."""
        seconds = float(seconds)
        if math.isnan(seconds) or abs(seconds) > 10 * 365 * 86400:
            raise ValueError("offset is seconds, within ten years")
        with self.lock:
            if self.schedule:
                raise ValueError("the clock moves only while no operation or recovery is under way")
            self.clock_offset = seconds

    def _at(self, when, action):
        heapq.heappush(self.schedule, (when, next(self.seq), action))

    def advance(self, now=None):
        now = self.now() if now is None else now
        with self.lock:
            while self.schedule and self.schedule[0][0] <= now:
                when, order, action = heapq.heappop(self.schedule)  # pylint: disable=unused-variable
                action(when)

    # -- events -----------------------------------------------------------------
    def log_request(self, when, method, path, query, status, request_id, dropped=None, client=None):
        event = {"time": when, "kind": "request", "method": method, "path": path, "query": query,
                 "status": status, "request_id": request_id}
        if client:
            event["client"] = client  # the client's address and port: which connection sent it
        if dropped:
            event["dropped"] = dropped
        with self.lock:
            self.events.append(event)

    def _set_status(self, when, inst, status, power_state, details=""):
        if inst["status"] == status and inst["power_state"] == power_state:
            return
        inst["status"], inst["power_state"], inst["details"] = status, power_state, details
        dep = self.services[inst["service"].lower()]["deployments"][inst["deployment"].lower()]
        self.events.append({"time": when, "kind": "instance_status", "cloud_service": inst["service"],
                            "deployment": inst["deployment"], "role": inst["role"], "instance": inst["name"],
                            "upgrade_domain": inst["upgrade_domain"], "status": status,
                            "power_state": power_state})
        avail = self.availability[self._dep_key(dep)]
        if status == READY:
            avail["unavailable"].discard((inst["name"], inst["upgrade_domain"]))
        else:
            avail["unavailable"].add((inst["name"], inst["upgrade_domain"]))
        avail["max_unavailable_instances"] = max(avail["max_unavailable_instances"], len(avail["unavailable"]))
        avail["max_unavailable_upgrade_domains"] = max(
            avail["max_unavailable_upgrade_domains"], len({ud for name, ud in avail["unavailable"]}))

    def availability_report(self):
        with self.lock:
            return {key: {k: v for k, v in a.items() if k != "unavailable"}
                    for key, a in self.availability.items()}

    # -- operations ---------------------------------------------------------------
    def start_role_operation(self, kind, dep, inst, request_id, thumbprint, client_ip,
                             fail=None, stuck=False, when=None):
        """Accept a reimage/reboot/rebuild: take the deployment's lock and schedule the lifecycle.

        An instance's lifecycle belongs to the last operation started on it: what an earlier one scheduled (its
        recovery to ReadyRole, say) is dropped, so an instance stays down until the last operation on it is over.
        """
        now = self.now() if when is None else when
        op_seconds, rec_seconds = self.operation_seconds, self.recovery_seconds
        base = "/%s/services/hostedservices/%s/deployments/%s" % (self.subscription_id, dep["service"], dep["name"])
        op = {"request_id": request_id, "kind": "Update", "name": OPERATION_NAMES[kind], "status": "InProgress",
              "http_status": None, "error": None, "started": now, "completed": None,
              "object_id": "%s/roleinstances/%s" % (base, inst["name"]),
              "parameters": [("serviceName", dep["service"]), ("deploymentName", dep["name"]),
                             ("roleInstanceName", inst["name"])],
              "thumbprint": thumbprint, "client_ip": client_ip}
        self.operations[request_id] = op
        self.operation_order.append(request_id)
        dep["lock"] = request_id
        dep["modified"] = now
        inst["lifecycle"] = generation = inst.get("lifecycle", 0) + 1

        def current(action):
            return lambda t: action(t) if inst["lifecycle"] == generation else None

        for fraction, status, power in STATUS_PATHS[kind]:
            self._at(now + fraction * op_seconds,
                     current(lambda t, s=status, p=power: self._set_status(t, inst, s, p)))

        def finish(t):
            if fail:
                code, message = fail
                from .wire import STATUS_FOR_CODE
                op.update(status="Failed", http_status=STATUS_FOR_CODE.get(code, 500), error=(code, message))
                self._set_status(t, inst, "RestartingRole", "Started", "The role instance failed: %s" % message)
            else:
                op.update(status="Succeeded", http_status=200)
            op["completed"] = t
            dep["lock"] = None
            dep["modified"] = t
            if inst["lifecycle"] != generation:
                return  # a later operation on the instance has its lifecycle now
            if stuck:
                inst["stuck"] = True
                self._set_status(t, inst, "BusyRole", "Started", "Waiting for role to start...")
                return
            if rec_seconds > 0 and not fail:
                self._set_status(t, inst, "BusyRole", "Started")
            self._at(t + rec_seconds, current(lambda t2: self._set_status(t2, inst, READY, "Started")))

        self._at(now + op_seconds, finish)
        return op

    def foreign_operation(self, request_id, when=None):
        """An operation of another client's, named by an injected 409: pollable, InProgress for operation-seconds,
        then Succeeded. It holds no lock and is not listed (the emulator knows nothing else about it)."""
        now = self.now() if when is None else when
        op = {"request_id": request_id, "status": "InProgress", "http_status": None, "error": None,
              "started": now, "completed": None}
        self.operations[request_id] = op

        def finish(t):
            op.update(status="Succeeded", http_status=200, completed=t)

        self._at(now + self.operation_seconds, finish)
        return op

    def list_operations(self, start, end, object_id=None, result=None, token=None):
        with self.lock:
            matched = []
            for rid in self.operation_order:
                op = self.operations[rid]
                if not start <= op["started"] <= end:
                    continue
                if object_id:
                    oid, want = op["object_id"].lower().rstrip("/"), object_id.lower().rstrip("/")
                    if oid != want and not oid.startswith(want + "/"):
                        continue
                if result and op["status"].lower() != result.lower():
                    continue
                matched.append(op)
            offset = int(token) if token else 0
            page = matched[offset:offset + self.list_page_size]
            next_token = str(offset + len(page)) if offset + len(page) < len(matched) else None
            return [dict(op) for op in page], next_token

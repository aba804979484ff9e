"""Response bodies and headers in the real service's wire format.

Compact XML, no declaration, the windowsazure default namespace plus ``xmlns:i`` on the root, children
unprefixed, element order as in recorded traffic (see docs/emulator.md for the sources).
"""
import base64
import email.utils
import secrets
import uuid
from xml.sax.saxutils import escape

NS = 'xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
SERVER_HEADER = "1.0.6198.243 (rd_rdfe_stable.150618-1025) Microsoft-HTTPAPI/2.0"
REDIRECT_BODY = '<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/"/>'

ERROR_MESSAGES = {
    "ResourceNotFound": "The resource was not found.",
    "InternalError": "The server encountered an internal error. Please retry the request.",
    "TooManyRequests": "Too many requests received. Retry after some time.",
    "ServerBusy": "The server (or an internal component) is currently unavailable to receive requests. Please retry your request.",
    "ForbiddenError": "The server failed to authenticate the request. Verify that the certificate is valid and is associated with this subscription.",
    "MissingOrIncorrectVersionHeader": "The versioning header is not specified or was specified incorrectly.",
    "BadRequest": "A parameter was incorrect",
    "OperationTimedOut": "The operation could not be completed within the permitted time.",
}
# 409 ConflictError: the recorded (2015) text names the operation holding the deployment's lock; the 2014 text
# (microsoft/azure-puppet#24) did not.
CONFLICT_2015 = ("Windows Azure is currently performing an operation with x-ms-requestid {request_id} on this "
                 "deployment that requires exclusive access.")
CONFLICT_2014 = "Windows Azure is currently performing an operation on this deployment that requires exclusive access."
DATACONTRACT_NS = "http://schemas.datacontract.org/2004/07/Microsoft.WindowsAzure.ServiceManagement"
CODE_FOR_STATUS = {400: "BadRequest", 403: "ForbiddenError", 404: "ResourceNotFound", 409: "ConflictError",
                   500: "InternalError", 503: "TooManyRequests"}
STATUS_FOR_CODE = {"ResourceNotFound": 404, "InternalError": 500, "TooManyRequests": 503, "ServerBusy": 503,
                   "ForbiddenError": 403, "MissingOrIncorrectVersionHeader": 400, "BadRequest": 400,
                   "ConflictError": 409, "OperationTimedOut": 500, "AuthenticationFailed": 403,
                   "MissingOrInvalidRequiredQueryParameter": 400, "InvalidHttpVerb": 400}


def text(tag, value):
    if value is None:
        return "<%s i:nil=\"true\"/>" % tag
    value = str(value)
    if value == "":
        return "<%s/>" % tag
    return "<%s>%s</%s>" % (tag, escape(value), tag)


def new_request_id():
    """128 random bits as 32 hex digits: real request ids are not version-4 UUIDs (no fixed digit)."""
    return secrets.token_hex(16)


def conflict_message(holder):
    """The 409 text naming the in-flight operation (recorded 2015)."""
    return CONFLICT_2015.format(request_id=holder)


def dashed(request_id):
    return str(uuid.UUID(hex=request_id))


def http_date(epoch):
    return email.utils.formatdate(epoch, usegmt=True)


def iso(epoch):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def b64(value):
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def error(code, message=None):
    return "<Error %s><Code>%s</Code><Message>%s</Message></Error>" % (
        NS, escape(code), escape(message or ERROR_MESSAGES.get(code, "An error occurred.")))


def operation(request_id, status, http_status=None, err=None):
    parts = ["<Operation %s>" % NS, text("ID", dashed(request_id)), text("Status", status)]
    if status != "InProgress":
        parts.append(text("HttpStatusCode", http_status))
    if err:
        parts.append("<Error>%s%s</Error>" % (text("Code", err[0]), text("Message", err[1])))
    parts.append("</Operation>")
    return "".join(parts)


def _configuration(deployment):
    roles = "".join('<Role name="%s"><Instances count="%d" /></Role>' % (r["name"], len(r["instances"]))
                    for r in deployment["roles"])
    return b64('<?xml version="1.0" encoding="utf-8"?><ServiceConfiguration serviceName="%s" '
               'xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration" '
               'osFamily="4" osVersion="*">%s</ServiceConfiguration>' % (deployment["service"], roles))


def _extended_properties(pairs):
    if not pairs:
        return "<ExtendedProperties/>"
    return "<ExtendedProperties>%s</ExtendedProperties>" % "".join(
        "<ExtendedProperty>%s%s</ExtendedProperty>" % (text("Name", k), text("Value", v)) for k, v in pairs)


def _vip_name(dep):
    return dep["name"] + "ContractContract"


def role_instance(inst, endpoints=(), vip=None):
    endpoint_list = ""
    if endpoints:
        endpoint_list = "<InstanceEndpoints>%s</InstanceEndpoints>" % "".join(
            "<InstanceEndpoint>%s%s%s%s%s</InstanceEndpoint>" % (
                text("Name", e["name"]), text("Vip", vip), text("PublicPort", e["port"]),
                text("LocalPort", e["local_port"]), text("Protocol", e["protocol"])) for e in endpoints)
    return "".join([
        "<RoleInstance>", text("RoleName", inst["role"]), text("InstanceName", inst["name"]),
        text("InstanceStatus", inst["status"]), text("InstanceUpgradeDomain", inst["upgrade_domain"]),
        text("InstanceFaultDomain", inst["fault_domain"]), text("InstanceSize", inst["size"]),
        text("InstanceStateDetails", inst.get("details", "")), text("IpAddress", inst["ip"]), endpoint_list,
        text("PowerState", inst["power_state"]), "</RoleInstance>"])


def _role(dep, role):
    inputs = ""
    if role.get("endpoints"):
        inputs = "<InputEndpoints>%s</InputEndpoints>" % "".join(
            "<InputEndpoint>%s%s%s%s</InputEndpoint>" % (
                text("Port", e["port"]), text("Protocol", e["protocol"]), text("Vip", dep["vip"]),
                text("VirtualIPName", _vip_name(dep))) for e in role["endpoints"])
    return ("<Role>%s%s<ConfigurationSets><ConfigurationSet i:type=\"NetworkConfigurationSet\">"
            "<ConfigurationSetType>NetworkConfiguration</ConfigurationSetType>%s<SubnetNames/></ConfigurationSet>"
            "</ConfigurationSets></Role>" % (text("RoleName", role["name"]),
                                             text("OsVersion", "WA-GUEST-OS-6.70_202405-01"), inputs))


def _downtime(dep):
    if not dep.get("downtime"):
        return ""
    start, end, status = dep["downtime"]
    return "<PersistentVMDowntime>%s%s%s</PersistentVMDowntime>" % (
        text("StartTime", iso(start)), text("EndTime", iso(end)), text("Status", status))


def deployment_inner(dep, status, locked):
    instances = "".join(role_instance(i, r.get("endpoints"), dep["vip"]) for r in dep["roles"] for i in r["instances"])
    roles = "".join(_role(dep, r) for r in dep["roles"])
    return "".join([
        text("Name", dep["name"]), text("DeploymentSlot", dep["slot"].capitalize()),
        text("PrivateID", dep["private_id"]), text("Status", status), text("Label", b64(dep["name"])),
        text("Url", "http://%s.cloudapp.net/" % dep["service"]), text("Configuration", _configuration(dep)),
        "<RoleInstanceList>", instances, "</RoleInstanceList>",
        text("UpgradeDomainCount", dep["upgrade_domain_count"]), "<RoleList>", roles, "</RoleList>",
        text("SdkVersion", "2.9.8899.26"), text("Locked", "true" if locked else "false"),
        text("RollbackAllowed", "false"), text("CreatedTime", iso(dep["created"])),
        text("LastModifiedTime", iso(dep["modified"])), _extended_properties(dep.get("extended_properties")),
        _downtime(dep),
        "<VirtualIPs><VirtualIP>", text("Address", dep["vip"]), text("IsDnsProgrammed", "true"),
        text("Name", _vip_name(dep)), "</VirtualIP></VirtualIPs><LoadBalancers/>"])


def deployment(dep, status, locked):
    return "<Deployment %s>%s</Deployment>" % (NS, deployment_inner(dep, status, locked))


def _hosted_service_inner(base_url, subscription_id, svc):
    return "".join([
        text("Url", "%s/%s/services/hostedservices/%s" % (base_url, subscription_id, svc["name"])),
        text("ServiceName", svc["name"]), "<HostedServiceProperties>", text("Description", None),
        text("AffinityGroup", svc["affinity_group"]) if svc.get("affinity_group") else text("Location", svc["location"]),
        text("Label", b64(svc["name"])), text("Status", "Created"),
        text("DateCreated", iso(svc["created"])), text("DateLastModified", iso(svc["created"])),
        _extended_properties(svc.get("extended_properties")), "</HostedServiceProperties>"])


def hosted_service(base_url, subscription_id, svc, deployments=None):
    """Get Cloud Service Properties; ``deployments`` is a list of (dep, status, locked) with embed-detail."""
    inner = _hosted_service_inner(base_url, subscription_id, svc)
    if deployments is not None:
        if deployments:
            inner += "<Deployments>%s</Deployments>" % "".join(
                "<Deployment>%s</Deployment>" % deployment_inner(*d) for d in deployments)
        else:
            inner += "<Deployments/>"
    return "<HostedService %s>%s</HostedService>" % (NS, inner)


def _compute_capabilities(svc):
    web, vms = svc["compute_capabilities"]

    def sizes(tag, names):
        return "<%s>%s</%s>" % (tag, "".join(text("RoleSize", n) for n in names), tag) if names else "<%s/>" % tag
    return "<ComputeCapabilities>%s%s</ComputeCapabilities>" % (
        sizes("WebWorkerRoleSizes", web), sizes("VirtualMachinesRoleSizes", vms))


def hosted_services(base_url, subscription_id, services):
    """List Cloud Services: each service with the role sizes it offers (only this answer carries them)."""
    return "<HostedServices %s>%s</HostedServices>" % (NS, "".join(
        "<HostedService>%s%s</HostedService>" % (
            _hosted_service_inner(base_url, subscription_id, s), _compute_capabilities(s)) for s in services))


def subscription_operations(ops, continuation_token):
    parts = ["<SubscriptionOperationCollection %s><SubscriptionOperations>" % NS]
    for op in ops:
        # The a: prefix is the one the legacy Python SDK looks up (it matches qualified names); the documentation
        # sample's d2p1: left that SDK without parameters.
        params = "".join(
            "<OperationParameter><a:Name>%s</a:Name><a:Value>%s</a:Value></OperationParameter>"
            % (escape(k), escape(v)) for k, v in op["parameters"])
        parts.append("".join([
            "<SubscriptionOperation>", text("OperationId", dashed(op["request_id"])),
            text("OperationObjectId", op["object_id"]), text("OperationName", op["name"]),
            '<OperationParameters xmlns:a="%s">' % DATACONTRACT_NS, params, "</OperationParameters>",
            # Data contract order: UsedServiceManagementApi, UserEmailAddress (portal users only),
            # SubscriptionCertificateThumbprint, ClientIP.
            "<OperationCaller>", text("UsedServiceManagementApi", "true"),
            text("SubscriptionCertificateThumbprint", op["thumbprint"]), text("ClientIP", op["client_ip"]),
            "</OperationCaller>",
            "<OperationStatus>", text("ID", dashed(op["request_id"])), text("Status", op["status"]),
            text("HttpStatusCode", op["http_status"]) if op["status"] != "InProgress" else "",
            "</OperationStatus>", text("OperationStartedTime", iso(op["started"])),
            text("OperationCompletedTime", iso(op["completed"])) if op["completed"] else "",
            text("OperationKind", op["kind"]), "</SubscriptionOperation>"]))
    parts.append("</SubscriptionOperations>")
    if continuation_token:
        parts.append(text("ContinuationToken", continuation_token))
    parts.append("</SubscriptionOperationCollection>")
    return "".join(parts)

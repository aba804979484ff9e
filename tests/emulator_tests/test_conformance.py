"""The emulator's answers compared structurally with real traffic recorded from the live service.

Element names, order and namespaces, root attributes and header sets are compared; ids, dates, addresses
and values are not. Recordings live outside the project (../shared/reference/asm/recordings).
"""
import json
import re
import time
import xml.etree.ElementTree as ET

import pytest

from tests.helpers import RECORDINGS

BODIES = RECORDINGS / "bodies"
pytestmark = pytest.mark.skipif(not BODIES.is_dir(), reason="recordings not found at %s" % RECORDINGS)


def _without_ids(text):
    return re.sub(r"[0-9a-f]{32}", "<id>", text)


def _index():
    return {entry["file"]: entry for entry in json.loads((BODIES / "INDEX.json").read_text())}


def _orders(xml_text):
    """For every element name, the order of its children's names (first occurrence)."""
    orders = {}

    def walk(elem):
        names = []
        for child in elem:
            if child.tag not in names:
                names.append(child.tag)
            walk(child)
        if names:
            orders.setdefault(elem.tag, names)
    walk(ET.fromstring(xml_text))
    return orders


def _assert_same_shape(ours, recorded, required_children):
    assert not ours.startswith("<?xml") and not recorded.startswith("<?xml")
    assert ours.split(">", 1)[0].split(" ", 1)[1] == recorded.split(">", 1)[0].split(" ", 1)[1], "root attributes"
    mine, theirs = _orders(ours), _orders(recorded)
    for tag, names in mine.items():
        if tag not in theirs:
            continue
        common = [n for n in names if n in theirs[tag]]
        assert common == [n for n in theirs[tag] if n in names], "child order of %s differs" % tag
    for tag, children in required_children.items():
        for child in children:
            assert child in mine.get(tag, []), "%s lacks %s" % (tag, child)


W = "{http://schemas.microsoft.com/windowsazure}"
DEPLOYMENT_CHILDREN = [W + n for n in (
    "Name", "DeploymentSlot", "PrivateID", "Status", "Label", "Url", "Configuration", "RoleInstanceList",
    "UpgradeDomainCount", "RoleList", "SdkVersion", "Locked", "RollbackAllowed", "CreatedTime", "LastModifiedTime",
    "ExtendedProperties", "VirtualIPs", "LoadBalancers")]
INSTANCE_CHILDREN = [W + n for n in (
    "RoleName", "InstanceName", "InstanceStatus", "InstanceUpgradeDomain", "InstanceFaultDomain", "InstanceSize",
    "InstanceStateDetails", "IpAddress", "PowerState")]


@pytest.mark.parametrize("recording", sorted(p.name for p in BODIES.glob("xplat_paas_*_Deployment_200_*.xml"))
                         + ["py_test_update_deployment_status_06_Deployment_200.xml"])
def test_get_deployment_matches_recording(api, recording):
    ours = api("GET", "/services/hostedservices/contoso-web/deploymentslots/production")
    _assert_same_shape(ours.text, (BODIES / recording).read_text(encoding="utf-8"),
                       {W + "Deployment": DEPLOYMENT_CHILDREN, W + "RoleInstance": INSTANCE_CHILDREN})
    index = _index()[recording]
    recorded_headers = {k.lower() for k in index["response_headers"]} - {"transfer-encoding", "connection"}
    ours_headers = {k.lower() for k in ours.headers} - {"strict-transport-security", "connection", "keep-alive"}
    assert recorded_headers <= ours_headers | {"strict-transport-security"}


def test_cloud_service_with_embed_detail_matches_recording(api):
    recorded = (BODIES / "py_test_get_hosted_service_properties_with_embed_detail_03_HostedService_200.xml").read_text()
    ours = api("GET", "/services/hostedservices/contoso-web?embed-detail=true").text
    _assert_same_shape(ours, recorded, {W + "HostedService": [W + "Url", W + "ServiceName",
                                                              W + "HostedServiceProperties", W + "Deployments"]})
    plain = api("GET", "/services/hostedservices/contoso-web").text
    assert "<Deployments>" not in plain


ASM_OPERATION_BODIES = sorted(p.name for p in BODIES.glob("*_Operation_200.xml") if "<ID>" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("recording", ASM_OPERATION_BODIES)
def test_operation_status_matches_recording(api, emulator, recording):
    recorded = (BODIES / recording).read_text(encoding="utf-8")
    status = ET.fromstring(recorded).find(W + "Status").text
    if status == "Failed":
        emulator.fault(method="POST", path="comp=reimage", action={
            "fail_operation": {"code": "BadRequest", "message": "Port 22 is already in use."}})
    emulator.timing(operation_seconds=0.1 if status != "InProgress" else 30)
    request_id = api.reimage().headers["x-ms-request-id"]
    time.sleep(0.3 if status != "InProgress" else 0)
    ours = api("GET", "/operations/%s" % request_id).text
    assert ET.fromstring(ours).find(W + "Status").text == status
    _assert_same_shape(ours, recorded, {W + "Operation": [W + "ID", W + "Status"]})
    assert (W + "HttpStatusCode" in _orders(ours)[W + "Operation"]) == (status != "InProgress")


@pytest.mark.parametrize("recording,make", [
    ("xplat_error_16_Error_409_ClitestVmVnet.xml", "conflict"),
    ("xplat_error_16_Error_409_ClitestVmVnet.xml", "injected_conflict"),
    ("py_test_create_get_delete_deployment_05_Error_404.xml", "missing_deployment_name"),
    ("xplat_throttling_00_Error_503.xml", "throttle"),
    ("xplat_error_13_Error_500_clitestvm8336.xml", "internal"),
    ("py_test_create_get_delete_deployment_05_Error_404.xml", "missing_slot"),
    ("py_test_perform_delete_04_Error_404.xml", "missing_service"),
])
def test_error_bodies_match_recordings_exactly_but_for_ids(api, emulator, recording, make):
    recorded = (BODIES / recording).read_text(encoding="utf-8")
    path = "/services/hostedservices/contoso-web/deploymentslots/production"
    if make == "conflict":
        emulator.timing(operation_seconds=30)
        api.reimage("WebRole1_IN_0")
        response = api.reimage("WebRole1_IN_1")
    elif make == "injected_conflict":
        emulator.fault(method="POST", path="comp=reimage", action={"status": 409})
        response = api.reimage()
    elif make == "missing_deployment_name":
        response = api("GET", "/services/hostedservices/contoso-web/deployments/utdeployment")
    elif make == "throttle":
        emulator.fault(method="GET", path="deploymentslots", action={"status": 503})
        response = api("GET", path)
    elif make == "internal":
        emulator.fault(method="POST", path="comp=reimage", action={"status": 500})
        response = api.reimage()
    elif make == "missing_slot":
        emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [{"name": "contoso-web"}]})
        response = api("GET", path)
    else:
        response = api("GET", "/services/hostedservices/utsvc-gone")
    assert _without_ids(response.text) == _without_ids(recorded)
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert int(response.headers["content-length"]) == len(response.content)


def test_redirect_body_matches_recording(api, emulator):
    recorded = json.loads((RECORDINGS / "extracted" / "redirect_307_samples.json").read_text())[0]
    emulator.fault(method="GET", path="hostedservices$", action={"redirect": True})
    response = api("GET", "/services/hostedservices")
    assert response.status_code == recorded["status"] == 307
    assert response.text == recorded["response_body"]
    assert response.headers["server"] == recorded["response_headers"]["server"]

"""The parsers against every relevant body recorded from the live service."""
import re

import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _asm_xml as asm_xml


def _bodies(recordings, pattern):
    return sorted((recordings / "bodies").glob(pattern))


def test_every_recorded_deployment_parses(recordings):
    files = _bodies(recordings, "*_Deployment_200*.xml")
    assert len(files) >= 15
    for path in files:
        text = path.read_text(encoding="utf-8")
        deployment = asm_xml.parse_deployment(text)
        assert deployment["name"] and deployment["slot"] in ("production", "staging"), path.name
        assert len(deployment["role_instances"]) == text.count("<RoleInstance>"), path.name
        assert deployment["locked"] is False
        assert deployment["upgrade_domain_count"] >= 1
        for inst in deployment["role_instances"]:
            assert inst["instance_name"] and inst["role_name"] in deployment["roles"]
            assert isinstance(inst["upgrade_domain"], int) and isinstance(inst["fault_domain"], int)
            assert inst["instance_status"] and inst["power_state"]


def test_recorded_deployment_fields(recordings):
    dep = asm_xml.parse_deployment(
        (recordings / "bodies" / "py_test_change_deployment_configuration_03_Deployment_200.xml").read_text())
    assert dep["status"] == "SuspendedTransitioning"
    assert [(i["upgrade_domain"], i["fault_domain"]) for i in dep["role_instances"]] == [(0, 0), (1, 1), (2, 0), (3, 1)]
    assert sorted({i["instance_status"] for i in dep["role_instances"]}) == ["CreatingVM", "StoppedVM"]


def test_iaas_fixtures_parse_with_host_names(recordings):
    files = [p for p in (recordings / "libcloud").glob("*deploymentslots_Production.xml") if "<Deployment" in p.read_text()]
    assert files
    for path in files:
        dep = asm_xml.parse_deployment(path.read_text())
        assert all(i["host_name"] for i in dep["role_instances"])


def test_every_recorded_operation_parses(recordings):
    # Two recorded "Operation" bodies belong to the Websites API (<Id>, not <ID>); they are not ASM's.
    files = [p for p in _bodies(recordings, "*_Operation_200.xml") if "<ID>" in p.read_text(encoding="utf-8")]
    assert len(files) >= 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        op = asm_xml.parse_operation(text)
        assert re.fullmatch(r"[0-9a-f]{32}", op["request_id"])
        assert op["request_id"] == re.search(r"<ID>([^<]+)</ID>", text).group(1).replace("-", "")
        assert op["status"] in ("InProgress", "Succeeded", "Failed")
        assert (op["http_status_code"] is None) == (op["status"] == "InProgress")
        assert (op["error"] is not None) == (op["status"] == "Failed")


def test_failed_operation_sample(recordings):
    import json
    samples = json.loads((recordings / "extracted" / "operation_status_samples.json").read_text())
    failed = [s for s in samples if "<Status>Failed</Status>" in s.get("response_body", "")]
    assert failed
    op = asm_xml.parse_operation(failed[0]["response_body"])
    assert op["http_status_code"] == 400 and op["error"]["code"] == "BadRequest" and op["error"]["message"]


def test_every_recorded_error_parses(recordings):
    files = _bodies(recordings, "*_Error_*.xml") + sorted((recordings / "libcloud").glob("*.xml"))
    seen = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        if "<Error" not in text[:80]:
            continue
        code, message = asm_xml.parse_error(text)
        assert code and message, path.name
        seen += 1
    assert seen >= 20
    assert asm_xml.parse_error("<Deployment/>") == (None, None)
    assert asm_xml.parse_error("not xml") == (None, None)


def test_hosted_service_with_embedded_deployments(recordings):
    svc = asm_xml.parse_hosted_service((recordings / "bodies" /
                                        "py_test_get_hosted_service_properties_with_embed_detail_03_HostedService_200.xml").read_text())
    assert svc["name"] == "utsvc75f61e6c" and svc["location"] == "West US"
    assert len(svc["deployments"]) == 1 and len(svc["deployments"][0]["role_instances"]) == 2


def test_hosted_service_without_deployments(recordings):
    for path in (recordings / "libcloud").glob("*hostedservices_testdcabc.xml"):
        if "<HostedService " in path.read_text():
            svc = asm_xml.parse_hosted_service(path.read_text())
            assert svc["deployments"] in (None, [])


def test_wrong_root_is_refused():
    with pytest.raises(asm_xml.ParseError):
        asm_xml.parse_deployment("<Operation/>")
    with pytest.raises(asm_xml.ParseError):
        asm_xml.parse_operation("<<<")


def test_namespace_free_documentation_samples_parse():
    op = asm_xml.parse_operation("<?xml version='1.0'?><Operation><ID>904b574f-8c60-b8cd-9906-593a7c53b6d5</ID>"
                                 "<Status>Succeeded</Status><HttpStatusCode>200</HttpStatusCode></Operation>")
    assert op == {"request_id": "904b574f8c60b8cd9906593a7c53b6d5", "status": "Succeeded", "http_status_code": 200,
                  "error": None}


@pytest.mark.parametrize("prefix", ["a", "d2p1"])
def test_subscription_operations(prefix):
    """Parameters are read by local name: the a: prefix (what the legacy SDK reads) and the documentation's d2p1:."""
    body = ('<SubscriptionOperationCollection xmlns="http://schemas.microsoft.com/windowsazure" '
            'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><SubscriptionOperations>'
            '<SubscriptionOperation><OperationId>904b574f-8c60-b8cd-9906-593a7c53b6d5</OperationId>'
            '<OperationObjectId>/s/services/hostedservices/a</OperationObjectId><OperationName>ReimageRoleInstance'
            '</OperationName><OperationParameters xmlns:{p}="http://schemas.datacontract.org/2004/07/Microsoft.'
            'WindowsAzure.ServiceManagement"><OperationParameter><{p}:Name>serviceName</{p}:Name><{p}:Value>a'
            '</{p}:Value></OperationParameter><OperationParameter><{p}:Name>roleInstanceName</{p}:Name><{p}:Value>'
            'W_IN_0</{p}:Value></OperationParameter></OperationParameters><OperationCaller><UsedServiceManagementApi>'
            'true</UsedServiceManagementApi><SubscriptionCertificateThumbprint>0A1B</SubscriptionCertificateThumbprint>'
            '<ClientIP>10.0.0.1</ClientIP></OperationCaller><OperationStatus>'
            '<ID>904b574f-8c60-b8cd-9906-593a7c53b6d5</ID><Status>InProgress</Status></OperationStatus>'
            '<OperationStartedTime>2026-01-01T00:00:00Z</OperationStartedTime><OperationKind>Update</OperationKind>'
            '</SubscriptionOperation></SubscriptionOperations><ContinuationToken>abc</ContinuationToken>'
            '</SubscriptionOperationCollection>').replace("{p}", prefix)
    ops, token = asm_xml.parse_subscription_operations(body)
    assert token == "abc"
    assert ops[0]["request_id"] == "904b574f8c60b8cd9906593a7c53b6d5"
    assert ops[0]["parameters"] == {"serviceName": "a", "roleInstanceName": "W_IN_0"}
    assert ops[0]["http_status_code"] is None and ops[0]["status"] == "InProgress"


NS = 'xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'


def test_cloud_services_with_compute_capabilities_and_affinity_groups():
    """List Cloud Services as the service (and the emulator) write it: ComputeCapabilities after the properties,
    AffinityGroup in place of Location for a service in an affinity group."""
    props = ('<Description i:nil="true"/>{place}<Label>YQ==</Label><Status>Created</Status><DateCreated>'
             '2015-03-13T02:24:34Z</DateCreated><DateLastModified>2015-03-13T02:24:34Z</DateLastModified>'
             '<ExtendedProperties><ExtendedProperty><Name>ResourceGroup</Name><Value>a</Value></ExtendedProperty>'
             '</ExtendedProperties>')
    capabilities = ('<ComputeCapabilities><WebWorkerRoleSizes><RoleSize>Small</RoleSize></WebWorkerRoleSizes>'
                    '<VirtualMachinesRoleSizes><RoleSize>A5</RoleSize></VirtualMachinesRoleSizes></ComputeCapabilities>')
    body = ('<HostedServices %s><HostedService><Url>https://x/s/services/hostedservices/a</Url><ServiceName>a'
            '</ServiceName><HostedServiceProperties>%s</HostedServiceProperties>%s</HostedService><HostedService>'
            '<Url>https://x/s/services/hostedservices/b</Url><ServiceName>b</ServiceName><HostedServiceProperties>%s'
            '</HostedServiceProperties><DefaultWinRmCertificateThumbprint>2B1C</DefaultWinRmCertificateThumbprint>%s'
            '</HostedService></HostedServices>' % (NS, props.format(place="<Location>West US</Location>"), capabilities,
                                                   props.format(place="<AffinityGroup>g1</AffinityGroup>"),
                                                   capabilities))
    first, second = asm_xml.parse_hosted_services(body)
    assert (first["name"], first["location"], first["affinity_group"]) == ("a", "West US", None)
    assert (second["name"], second["location"], second["affinity_group"]) == ("b", None, "g1")
    assert first["deployments"] is None and first["status"] == "Created"


def test_deployment_with_endpoints_downtime_and_extended_properties():
    """Nested elements named like the ones the parser reads (InstanceEndpoint/Name, ExtendedProperty/Name) are not
    taken for them."""
    instance = ('<RoleInstance><RoleName>WebRole1</RoleName><InstanceName>WebRole1_IN_0</InstanceName><InstanceStatus>'
                'ReadyRole</InstanceStatus><InstanceUpgradeDomain>0</InstanceUpgradeDomain><InstanceFaultDomain>0'
                '</InstanceFaultDomain><InstanceSize>Small</InstanceSize><InstanceStateDetails/><IpAddress>10.0.0.4'
                '</IpAddress><InstanceEndpoints><InstanceEndpoint><Name>Endpoint1</Name><Vip>52.0.0.1</Vip><PublicPort>80'
                '</PublicPort><LocalPort>80</LocalPort><Protocol>http</Protocol></InstanceEndpoint></InstanceEndpoints>'
                '<PowerState>Started</PowerState></RoleInstance>')
    body = ('<Deployment %s><Name>d</Name><DeploymentSlot>Production</DeploymentSlot><PrivateID>0a</PrivateID><Status>'
            'Running</Status><Label>ZA==</Label><Url>http://a.cloudapp.net/</Url><Configuration>PA==</Configuration>'
            '<RoleInstanceList>%s</RoleInstanceList><UpgradeDomainCount>1</UpgradeDomainCount><RoleList><Role><RoleName>'
            'WebRole1</RoleName><OsVersion/><ConfigurationSets><ConfigurationSet i:type="NetworkConfigurationSet">'
            '<ConfigurationSetType>NetworkConfiguration</ConfigurationSetType><InputEndpoints><InputEndpoint><Port>80'
            '</Port><Protocol>http</Protocol><Vip>52.0.0.1</Vip><VirtualIPName>dContractContract</VirtualIPName>'
            '</InputEndpoint></InputEndpoints><SubnetNames/></ConfigurationSet></ConfigurationSets></Role></RoleList>'
            '<SdkVersion/><Locked>false</Locked><RollbackAllowed>false</RollbackAllowed><CreatedTime>2026-01-01T00:00:00Z'
            '</CreatedTime><LastModifiedTime>2026-01-01T00:00:00Z</LastModifiedTime><ExtendedProperties>'
            '<ExtendedProperty><Name>owner</Name><Value>ops</Value></ExtendedProperty></ExtendedProperties>'
            '<PersistentVMDowntime><StartTime>2026-01-01T00:00:00Z</StartTime><EndTime>2027-01-01T00:00:00Z</EndTime>'
            '<Status>PersistentVMUpdateScheduled</Status></PersistentVMDowntime><VirtualIPs><VirtualIP><Address>52.0.0.1'
            '</Address><IsDnsProgrammed>true</IsDnsProgrammed><Name>dContractContract</Name></VirtualIP></VirtualIPs>'
            '<LoadBalancers/></Deployment>' % (NS, instance))
    dep = asm_xml.parse_deployment(body)
    assert (dep["name"], dep["slot"], dep["status"], dep["locked"]) == ("d", "production", "Running", False)
    assert dep["roles"] == ["WebRole1"] and len(dep["role_instances"]) == 1
    inst = dep["role_instances"][0]
    assert (inst["instance_name"], inst["ip_address"], inst["power_state"]) == ("WebRole1_IN_0", "10.0.0.4", "Started")
    assert inst["instance_state_details"] is None and inst["host_name"] is None


DEPLOYMENT = ('<Deployment><Name>d</Name><DeploymentSlot>Production</DeploymentSlot><RoleInstanceList><RoleInstance>'
              '<RoleName>W</RoleName><InstanceName>W_IN_0</InstanceName><InstanceStatus>ReadyRole</InstanceStatus>'
              '<InstanceUpgradeDomain>0</InstanceUpgradeDomain></RoleInstance></RoleInstanceList></Deployment>')


@pytest.mark.parametrize("body, words", [
    ("<Operation><ID>x</ID><Status>Failed</Status><Error><Message>bad \x01</Message></Error></Operation>", "not valid XML"),
    ("<Operation><ID>x</ID></Operation>", "no Status"),
    ("<Operation><Status>Done</Status></Operation>", "not one of"),
    ("<!DOCTYPE html><html><body>Sign in</body></html>", "document type"),
    ('<!DOCTYPE d [<!ENTITY a "aaaa">]><Deployment>&a;</Deployment>', "document type"),
    ("<Error><Code>InternalError</Code><Message>x</Message></Error>", "the answer is a <Error> document, not <Operation>"),
    (DEPLOYMENT.replace("<InstanceName>W_IN_0</InstanceName>", ""), "RoleInstance has no InstanceName"),
    (DEPLOYMENT.replace("<Name>d</Name>", "<Name> </Name>"), "Deployment has no Name"),
    (DEPLOYMENT.replace(">0</InstanceUpgradeDomain>", ">zero</InstanceUpgradeDomain>"), "not a number"),
])
def test_an_answer_that_is_not_the_services_xml_is_a_bad_response(body, words):
    """A ServiceManagementError (code BadResponse), so every caller (modules, the roll, the inventory) handles it."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import ServiceManagementError
    parse = asm_xml.parse_operation if "Operation" in body or "Error>" in body else asm_xml.parse_deployment
    with pytest.raises(ServiceManagementError, match=words) as caught:
        parse(body.encode())
    assert caught.value.code == "BadResponse"

"""Host variables and group names from the real Get Deployment bodies."""
from ansible_collections.azure_classic.cloud_services.plugins.inventory.role_instances import (
    HOST_VARIABLES, InventoryModule, instances_of, safe_group)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _asm_xml as asm_xml


def test_every_recorded_paas_deployment_yields_complete_host_variables(recordings):
    files = sorted((recordings / "bodies").glob("xplat_paas_*_Deployment_200_*.xml"))
    assert files
    for path in files:
        deployment = asm_xml.parse_deployment(path.read_text(encoding="utf-8"))
        records = list(instances_of("svc", deployment))
        assert len(records) == len(deployment["role_instances"])
        for record in records:
            assert set(record) == set(HOST_VARIABLES)
            assert record["deployment_slot"] in ("production", "staging")
            assert record["role_instance"].startswith(record["cloud_role"] + "_IN_")
            assert isinstance(record["upgrade_domain"], int)


def test_embedded_deployments_of_a_cloud_service(recordings):
    body = (recordings / "bodies" / "py_test_get_hosted_service_properties_with_embed_detail_03_HostedService_200.xml")
    service = asm_xml.parse_hosted_service(body.read_text())
    records = [r for d in service["deployments"] for r in instances_of(service["name"], d)]
    assert [(r["role_instance"], r["instance_status"], r["upgrade_domain"]) for r in records] == [
        ("WorkerRole1_IN_0", "StoppedVM", 0), ("WorkerRole1_IN_1", "CreatingVM", 1)]


def test_group_names_are_safe():
    assert safe_group("cloud_service", "contoso-web.v2") == "cloud_service_contoso_web_v2"
    assert safe_group("upgrade_domain", 3) == "upgrade_domain_3"


def test_verify_file_suffix(tmp_path):
    plugin = InventoryModule()
    good = tmp_path / "contoso.role_instances.yml"
    bad = tmp_path / "contoso.yml"
    for path in (good, bad):
        path.write_text("plugin: azure_classic.cloud_services.role_instances\n")
    assert plugin.verify_file(str(good)) and not plugin.verify_file(str(bad))

"""Fidelity measured: the structural diff of the emulator's answers against every recording of each operation.

For each operation the emulator implements, its answers (several states and topologies) are compared with
every recorded answer of that operation (tests/emulator_tests/structural_diff.py says what is compared).
Every difference must be a known departure below, each with its evidence marker (✔ recorded, ◇ documented,
? assumed) and the reason it stays; docs/emulator.md lists the same. A new difference fails the test (a
regression), and so does a known departure that no longer shows (remove it here and in the docs).
"""
import time

import pytest

from tests.emulator_tests import recorded
from tests.emulator_tests.structural_diff import Sample, compare
from tests.helpers import RECORDINGS

pytestmark = pytest.mark.skipif(not (RECORDINGS / "bodies").is_dir(), reason="recordings not found at %s" % RECORDINGS)

VM_ONLY = "virtual machines only: the emulator models web and worker roles"
STS = ("✔", "Strict-Transport-Security is sent since 2016 (recorded on later answers of other operations); "
            "this operation's recordings are older")
AFFINITY = ("◇", "a cloud service in an affinity group (topology affinity_group) has AffinityGroup where others have "
                 "Location, as documented; no recording has one")
KNOWN = {
    "List Cloud Services": {
        "not-produced HostedServices/HostedService/DefaultWinRmCertificateThumbprint": (
            "✔", "present only for cloud services holding virtual machines (WinRM); " + VM_ONLY),
        "extra HostedServices/HostedService/HostedServiceProperties/AffinityGroup": AFFINITY,
        "missing HostedServices/HostedService/HostedServiceProperties/Location": AFFINITY,
        "header-extra strict-transport-security": STS,
    },
    "Get Cloud Service Properties": {
        "extra HostedService/HostedServiceProperties/AffinityGroup": AFFINITY,
        "missing HostedService/HostedServiceProperties/Location": AFFINITY,
        "header-extra strict-transport-security": STS,
    },
    "Get Cloud Service Properties (embed-detail)": {
        "extra HostedService/HostedServiceProperties/AffinityGroup": AFFINITY,
        "missing HostedService/HostedServiceProperties/Location": AFFINITY,
        "header-extra strict-transport-security": STS,
        "extra HostedService/Deployments/Deployment/RoleList/Role/ConfigurationSets/ConfigurationSet/InputEndpoints/"
        "InputEndpoint/VirtualIPName": (
            "✔", "recorded in Get Deployment answers from 2017; the deployments recorded inside a cloud service are "
                 "older (2014-2015)"),
    },
    "Get Deployment": {
        "not-produced Deployment/ExtensionConfiguration": (
            "✔", "recorded for deployments with the RDP extension; the emulator models no extensions"),
    },
}
UNRECORDED = {
    "List Subscription Operations": "no recording exists; the legacy SDK's parser is the check (test_legacy_sdk.py)"}

WEB_ENDPOINTS = [
    {"name": "Endpoint1", "protocol": "http", "port": 80, "local_port": 80},
    {"name": "Microsoft.WindowsAzure.Plugins.RemoteForwarder.RdpInput", "protocol": "tcp", "port": 3389,
     "local_port": 20000},
]
PRODUCTION = {
    "name": "contoso-web-prod", "slot": "production", "upgrade_domain_count": 3,
    "extended_properties": {"owner": "operations"},
    "roles": [{"name": "WebRole1", "instances": 2, "size": "Small", "endpoints": WEB_ENDPOINTS},
              {"name": "WorkerRole1", "instances": 2, "size": "Medium"}],
}
STAGING = {"name": "contoso-web-staging", "slot": "staging", "extended_properties": {"owner": "release"},
           "roles": [{"name": "WebRole1", "instances": 1}]}
RICH = {"cloud_services": [
    {"name": "contoso-web", "location": "West US", "deployments": [PRODUCTION, STAGING],
     "extended_properties": {"ResourceGroup": "contoso-web", "ResourceLocation": "West US"}},
    {"name": "contoso-ag", "affinity_group": "contoso-group", "deployments": []},
]}


def _sample(source, response):
    return Sample("emulator: " + source, response.status_code, dict(response.headers), response.text,
                  response.request.method, response.request.path_url)


def _rich(emulator):
    emulator.topology(dict(RICH, subscription_id=emulator.subscription_id))


def _list_cloud_services(api, emulator):
    out = [_sample("default topology", api("GET", "/services/hostedservices"))]
    _rich(emulator)
    return out + [_sample("rich topology", api("GET", "/services/hostedservices"))]


def _cloud_service(api, emulator, query=""):
    # The plain answers recorded have no extended properties: compare ours without them too.
    out = [] if query else [_sample("default topology", api("GET", "/services/hostedservices/contoso-web"))]
    _rich(emulator)
    return out + [_sample(name + query, api("GET", "/services/hostedservices/%s%s" % (name, query)))
                  for name in (("contoso-web", "contoso-ag") if query else ("contoso-ag",))]


def _deployment(api, emulator):
    out = [_sample("default topology", api("GET", "/services/hostedservices/contoso-web/deploymentslots/production"))]
    _rich(emulator)
    emulator.timing(operation_seconds=30)
    for path in ("deploymentslots/production", "deployments/contoso-web-staging"):
        out.append(_sample(path, api("GET", "/services/hostedservices/contoso-web/" + path)))
    assert api.reimage("WebRole1_IN_1").status_code == 202
    time.sleep(0.1)
    out.append(_sample("locked", api("GET", "/services/hostedservices/contoso-web/deploymentslots/production")))
    return out


def _operation_status(status):
    def produce(api, emulator):
        if status == "Failed":
            emulator.fault(method="POST", path="comp=reimage", action={
                "fail_operation": {"code": "InternalError", "message": "The host could not apply the image."}})
        emulator.timing(operation_seconds=30 if status == "InProgress" else 0.1)
        request_id = api.reimage().headers["x-ms-request-id"]
        time.sleep(0 if status == "InProgress" else 0.4)
        return [_sample(status, api("GET", "/operations/%s" % request_id))]
    return produce


def _role_operations(api, emulator):
    emulator.timing(operation_seconds=0.05, recovery_seconds=0)
    out = []
    for comp, addressing in (("reimage", "deploymentslots/production"), ("reboot", "deploymentslots/staging"),
                             ("rebuild&resources=allLocalDrives", "deployments/contoso-web-prod")):
        out.append(_sample(comp, api.reimage("WebRole1_IN_0", addressing=addressing, comp=comp)))
        time.sleep(0.2)  # the deployment's lock is released
    return out


def _redirect(api, emulator):
    emulator.fault(method="GET", path="hostedservices$", action={"redirect": True})
    return [_sample("307", api("GET", "/services/hostedservices"))]


def _errors(api, emulator):
    emulator.timing(operation_seconds=30)
    base = "/services/hostedservices/contoso-web/deploymentslots/production"
    out = [_sample("404 service", api("GET", "/services/hostedservices/nope")),
           _sample("404 deployment", api("GET", "/services/hostedservices/contoso-web/deployments/nope")),
           _sample("404 instance", api.reimage("WebRole1_IN_9")),
           _sample("403", api("GET", base, cert="unregistered")),
           _sample("400 version", api("GET", base, version=None)),
           _sample("400 comp", api.reimage(comp="restart"))]
    assert api.reimage("WebRole1_IN_0").status_code == 202
    out.append(_sample("409 lock", api.reimage("WebRole1_IN_1")))
    for status in (409, 503, 500):
        emulator.fault(method="GET", path="hostedservices$", action={"status": status})
        out.append(_sample("%d injected" % status, api("GET", "/services/hostedservices")))
    return out


PRODUCERS = {
    "List Cloud Services": _list_cloud_services,
    "Get Cloud Service Properties": _cloud_service,
    "Get Cloud Service Properties (embed-detail)": lambda api, emu: _cloud_service(api, emu, "?embed-detail=true"),
    "Get Deployment": _deployment,
    "Get Operation Status (InProgress)": _operation_status("InProgress"),
    "Get Operation Status (Succeeded)": _operation_status("Succeeded"),
    "Get Operation Status (Failed)": _operation_status("Failed"),
    "Role instance operation (202)": _role_operations,
    "Redirect (307)": _redirect,
    "Error": _errors,
}


@pytest.fixture(scope="module")
def recordings_by_operation():
    return recorded.by_operation(RECORDINGS)


def test_every_recorded_operation_is_measured(recordings_by_operation):
    assert set(recordings_by_operation) == set(PRODUCERS)
    assert not set(UNRECORDED) & set(recordings_by_operation), "a recording appeared: measure it"


@pytest.mark.parametrize("operation", sorted(PRODUCERS))
def test_structural_diff_against_every_recording(api, emulator, recordings_by_operation, operation):
    ours = PRODUCERS[operation](api, emulator)
    findings = {str(f) for f in compare(ours, recordings_by_operation[operation])}
    known = KNOWN.get(operation, {})
    new = sorted(findings - set(known))
    gone = sorted(set(known) - findings)
    assert not new, "%s: departures from %d recordings not known before:\n  %s" % (
        operation, len(recordings_by_operation[operation]), "\n  ".join(new))
    assert not gone, "%s: known departures no longer found (remove them here and in docs/emulator.md):\n  %s" % (
        operation, "\n  ".join(gone))


def test_known_departures_carry_evidence_markers():
    for operation, entries in KNOWN.items():
        assert operation in PRODUCERS
        for finding, (marker, reason) in entries.items():
            assert marker in ("✔", "◇", "?") and reason, finding

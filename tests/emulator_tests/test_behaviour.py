"""Instance lifecycle, availability, faults, admin API and List Subscription Operations."""
import collections
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.helpers import ROOT, admin_headers


def _statuses(emulator, instance):
    return [e["status"] for e in emulator.events("instance_status") if e["instance"] == instance]


def test_reimage_lifecycle_and_availability(api, emulator):
    emulator.timing(operation_seconds=2.0, recovery_seconds=0.4)
    api.reimage("WebRole1_IN_1")
    time.sleep(0.7)  # StoppedVM lasts from 0.5 s to 1.0 s
    body = api("GET", "/services/hostedservices/contoso-web/deploymentslots/production").text
    assert "<InstanceName>WebRole1_IN_1</InstanceName><InstanceStatus>StoppedVM</InstanceStatus>" in body
    time.sleep(1.9)
    assert _statuses(emulator, "WebRole1_IN_1") == [
        "StoppingRole", "StoppedVM", "StartingVM", "StartingRole", "BusyRole", "ReadyRole"]
    events = emulator.events()
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    ready = [e for e in events if e.get("status") == "ReadyRole"][0]
    accepted = emulator.accepted()[0]
    assert 2.35 <= ready["time"] - accepted["time"] < 2.6
    avail = emulator.availability()["contoso-web/contoso-web-prod"]
    assert avail["max_unavailable_instances"] == 1 and avail["max_unavailable_upgrade_domains"] == 1
    assert emulator.availability()["contoso-web/contoso-web-staging"]["max_unavailable_instances"] == 0


def test_reboot_has_its_own_path(api, emulator):
    emulator.timing(operation_seconds=0.2, recovery_seconds=0.2)
    api.reimage("WebRole1_IN_2", comp="reboot")
    time.sleep(0.6)
    assert _statuses(emulator, "WebRole1_IN_2") == ["StoppingRole", "StartingRole", "BusyRole", "ReadyRole"]


def test_status_fault_with_skip_and_times(api, emulator):
    emulator.fault(method="GET", path="/deploymentslots/", skip=1, times=2, action={"status": 503})
    path = "/services/hostedservices/contoso-web/deploymentslots/production"
    codes = [api("GET", path).status_code for attempt in range(4)]
    assert codes == [200, 503, 503, 200]
    body = api("GET", "/services/hostedservices")  # not matched by the fault
    assert body.status_code == 200
    emulator.fault(method="GET", path="hostedservices$", action={"status": 500})
    failed = api("GET", "/services/hostedservices")
    assert failed.text.endswith("<Code>InternalError</Code><Message>The server encountered an internal error. "
                                "Please retry the request.</Message></Error>")


def test_a_bad_fault_payload_is_refused_and_the_admin_api_goes_on(emulator):
    import requests
    for payload in ([{"action": {"status": 503}}], {"path": "(", "action": {"status": 503}}):
        answer = requests.post(emulator.admin + "/faults", json=payload, headers=emulator.admin_headers,
                               verify=emulator.info["ca_path"], timeout=30)
        assert answer.status_code == 400, answer.text
    assert emulator.fault(action={"status": 503})["faults"] == 1


def test_redirect_goes_to_a_second_listener_that_serves_normally(api, emulator):
    emulator.fault(method="POST", path="comp=reimage", action={"redirect": True})
    response = api.reimage()
    assert response.status_code == 307
    location = response.headers["Location"]
    assert location.startswith("https://127.0.0.1:") and ":%d/" % emulator.server.port not in location
    assert "x-ms-request-id" not in response.headers
    follow = api.session.post(location, cert=emulator.info["certificate_path"], verify=emulator.info["ca_path"],
                              headers={"x-ms-version": "2014-10-01", "Content-Length": "0"}, timeout=10)
    assert follow.status_code == 202
    assert len(emulator.accepted()) == 1


def test_drop_before_starts_nothing_and_drop_after_starts_the_operation(api, emulator):
    emulator.fault(method="POST", path="WebRole1_IN_0", action={"drop": "before"})
    try:
        api.reimage("WebRole1_IN_0")
        raise AssertionError("the connection should have been dropped")
    except requests.exceptions.ConnectionError:
        pass
    assert emulator.accepted() == []
    emulator.fault(method="POST", path="WebRole1_IN_1", action={"drop": "after"})
    try:
        api.reimage("WebRole1_IN_1")
        raise AssertionError("the connection should have been dropped")
    except requests.exceptions.ConnectionError:
        pass
    accepted = emulator.accepted()
    assert len(accepted) == 1 and accepted[0]["dropped"] == "after"
    assert "<Locked>true</Locked>" in api("GET", "/services/hostedservices/contoso-web/deploymentslots/production").text


def test_delay_fault(api, emulator):
    emulator.fault(method="GET", path="hostedservices$", action={"delay": 0.5})
    started = time.monotonic()
    assert api("GET", "/services/hostedservices").status_code == 200
    assert time.monotonic() - started >= 0.5


def test_failed_operation_and_stuck_instance(api, emulator):
    emulator.timing(operation_seconds=0.2, recovery_seconds=0.2)
    emulator.fault(method="POST", path="WebRole1_IN_0", action={
        "fail_operation": {"code": "InternalError", "message": "Reimage failed on the host."}})
    emulator.fault(method="POST", path="WorkerRole1_IN_0", action={"stuck": True})
    failed = api.reimage("WebRole1_IN_0").headers["x-ms-request-id"]
    stuck = api.reimage("WorkerRole1_IN_0", addressing="deploymentslots/staging").headers["x-ms-request-id"]
    time.sleep(0.8)
    body = api("GET", "/operations/%s" % failed).text
    assert "<Status>Failed</Status><HttpStatusCode>500</HttpStatusCode><Error><Code>InternalError</Code>" \
           "<Message>Reimage failed on the host.</Message></Error></Operation>" in body
    assert "<Status>Succeeded</Status>" in api("GET", "/operations/%s" % stuck).text
    staging = api("GET", "/services/hostedservices/contoso-web/deploymentslots/staging").text
    assert "<InstanceName>WorkerRole1_IN_0</InstanceName><InstanceStatus>BusyRole</InstanceStatus>" in staging
    emulator.reset()
    staging = api("GET", "/services/hostedservices/contoso-web/deploymentslots/staging").text
    assert "BusyRole" not in staging
    assert [e["kind"] for e in emulator.events()] == ["request"], "reset empties the log"


def test_admin_reads_chunked_bodies(emulator):
    """A client that sends no Content-Length (Node.js, for one) is understood."""
    def chunks():
        yield b'{"action": {"status": '
        yield b'503}, "path": "hostedservices$"}'
    response = requests.post("%s/faults" % emulator.admin, data=chunks(), verify=emulator.info["ca_path"], timeout=10,
                             headers={"Content-Type": "application/json", **emulator.admin_headers})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200 and response.json() == {"faults": 1}
    assert emulator.server.faults.armed[0].action == {"status": 503}
    # the connection stays usable: the chunked body was read to its end
    session = requests.Session()
    for attempt in range(2):  # pylint: disable=unused-variable
        reply = session.post("%s/timing" % emulator.admin, data=iter([b'{"operation_seconds"', b": 1.5}"]),
                             headers=emulator.admin_headers, verify=emulator.info["ca_path"], timeout=10)
        assert reply.json()["operation_seconds"] == 1.5


def test_unreadable_chunked_body_gets_400(emulator):
    import socket
    import ssl
    context = ssl.create_default_context(cafile=emulator.info["ca_path"])
    with socket.create_connection(("127.0.0.1", emulator.server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"POST /_emulator/faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" % emulator.info["admin_token"].encode())
            assert tls.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_admin_rejects_bad_input(emulator):
    for path, payload in (("faults", {"action": {"explode": 1}}), ("topology", {"cloud_services": "x"}),
                          ("faults", {"action": {"status": 409, "conflict_text": "2016"}}),
                          ("faults", {"action": {"drop": "before", "message": "x"}})):
        url = "%s/%s" % (emulator.admin, path)
        response = requests.post(url, json=payload, headers=emulator.admin_headers, verify=emulator.info["ca_path"],
                                 timeout=10)
        assert response.status_code == 400 and "error" in response.json()


def test_list_subscription_operations_filters_and_pages(api, emulator):
    emulator.timing(operation_seconds=0.05, recovery_seconds=0.0, list_page_size=2)
    ids = []
    for instance in ("WebRole1_IN_0", "WebRole1_IN_1", "WorkerRole1_IN_0"):
        ids.append(api.reimage(instance).headers["x-ms-request-id"])
        time.sleep(0.15)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    window = "StartTime=%s&EndTime=%s" % (start, end)
    first = api("GET", "/operations?" + window).text
    assert first.count("<SubscriptionOperation>") == 2 and "<ContinuationToken>2</ContinuationToken>" in first
    second = api("GET", "/operations?%s&ContinuationToken=2" % window).text
    assert second.count("<SubscriptionOperation>") == 1 and "ContinuationToken" not in second
    object_id = "/%s/services/hostedservices/contoso-web/deployments/contoso-web-prod/roleinstances/WorkerRole1_IN_0" \
        % emulator.subscription_id
    filtered = api("GET", "/operations?%s&ObjectIdFilter=%s&OperationResultFilter=Succeeded" % (window, object_id)).text
    assert filtered.count("<SubscriptionOperation>") == 1
    assert "<OperationName>ReimageRoleInstance</OperationName>" in filtered
    assert ('<OperationParameters xmlns:a="http://schemas.datacontract.org/2004/07/Microsoft.WindowsAzure.'
            'ServiceManagement"><OperationParameter><a:Name>serviceName</a:Name><a:Value>contoso-web</a:Value>'
            '</OperationParameter>') in filtered
    assert re.search(r"<OperationCaller><UsedServiceManagementApi>true</UsedServiceManagementApi>"
                     r"<SubscriptionCertificateThumbprint>[0-9A-F]{40}</SubscriptionCertificateThumbprint>"
                     r"<ClientIP>127\.0\.0\.1</ClientIP></OperationCaller>", filtered)
    assert api("GET", "/operations?EndTime=2030-01-01").status_code == 400


def test_large_topology_loads_fast_and_serves(api, emulator):
    services = [{"name": "svc%02d" % n, "deployments": [
        {"name": "svc%02d-prod" % n, "slot": "production", "upgrade_domain_count": 5,
         "roles": [{"name": "WebRole1", "instances": 50}, {"name": "WorkerRole1", "instances": 50}]}]}
        for n in range(50)]
    started = time.monotonic()
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": services})
    assert time.monotonic() - started < 5
    body = api("GET", "/services/hostedservices/svc49/deploymentslots/production").text
    assert body.count("<RoleInstance>") == 100
    assert "<InstanceName>WorkerRole1_IN_49</InstanceName><InstanceStatus>ReadyRole</InstanceStatus>" \
           "<InstanceUpgradeDomain>4</InstanceUpgradeDomain><InstanceFaultDomain>1</InstanceFaultDomain>" in body


def test_200_concurrent_polling_clients(api, emulator):
    request_id = api.reimage().headers["x-ms-request-id"]

    def poll(client_number):  # pylint: disable=unused-argument
        session = requests.Session()
        codes = []
        for attempt in range(3):  # pylint: disable=unused-variable
            codes.append(session.get("%s/%s/operations/%s" % (emulator.url, emulator.subscription_id, request_id),
                                     cert=emulator.info["certificate_path"], verify=emulator.info["ca_path"],
                                     headers={"x-ms-version": "2014-10-01"}, timeout=60).status_code)
        session.close()
        return codes

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(poll, range(200)))
    assert all(codes == [200, 200, 200] for codes in results)


def test_command_line_start_up_connection_file_and_clean_shutdown(tmp_path):
    workdir = tmp_path / "emu"
    for attempt in range(2):
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--workdir", str(workdir), "--port", "0",
                                 "--operation-seconds", "1"], cwd=str(ROOT), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        line = proc.stdout.readline()
        elapsed = time.monotonic() - started
        info = json.loads((workdir / "connection.json").read_text())
        assert (workdir / "connection.json").stat().st_mode & 0o777 == 0o600, "it holds the PFX password"
        assert set(info) == {"management_url", "subscription_id", "ca_path", "certificate_path", "pfx_path",
                             "pfx_password", "publish_settings_path", "unregistered_certificate_path", "admin_url",
                             "admin_token"}
        assert info["management_url"] in line
        if attempt == 1:
            assert elapsed < 2.0, "start-up with existing PKI took %.2fs" % elapsed
        response = requests.get(info["admin_url"] + "/state", headers=admin_headers(info), verify=info["ca_path"],
                                timeout=10)
        assert response.json()["operation_seconds"] == 1.0
        proc.send_signal(signal.SIGTERM if attempt == 0 else signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        os.remove(workdir / "connection.json")


def test_command_line_rejects_a_bad_topology(tmp_path):
    bad = tmp_path / "topology.yml"
    bad.write_text("cloud_services:\n  - name: x\n    deployments:\n      - {name: d, slot: blue}\n")
    proc = subprocess.run([sys.executable, "-m", "tests.emulator", "--workdir", str(tmp_path / "w"), "--topology",
                           str(bad)], cwd=str(ROOT), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "slot must be production or staging" in proc.stderr


def test_publishsettings_and_pfx_are_usable(emulator):
    from cryptography.hazmat.primitives.serialization import pkcs12
    import base64
    import xml.etree.ElementTree as ET
    info = emulator.info
    with open(info["pfx_path"], "rb") as handle:
        key, cert, chain = pkcs12.load_key_and_certificates(handle.read(), info["pfx_password"].encode())
    assert not chain
    assert key.key_size >= 2048
    root = ET.parse(info["publish_settings_path"]).getroot()
    profile = root.find("PublishProfile")
    assert profile.get("SchemaVersion") == "2.0"
    sub = profile.find("Subscription")
    assert sub.get("Id") == emulator.subscription_id and sub.get("ServiceManagementUrl") == emulator.url
    key2, cert2, chain2 = pkcs12.load_key_and_certificates(base64.b64decode(sub.get("ManagementCertificate")), b"")
    assert key2.key_size >= 2048 and not chain2
    assert cert2 == cert


def test_rebuild_has_its_own_path(api, emulator):
    emulator.timing(operation_seconds=0.4, recovery_seconds=0.2)
    response = api.reimage("WorkerRole1_IN_1", comp="rebuild&resources=allLocalDrives",
                           addressing="deployments/contoso-web-prod")
    assert response.status_code == 202
    time.sleep(1.0)
    assert _statuses(emulator, "WorkerRole1_IN_1") == [
        "StoppingRole", "StoppedVM", "CreatingVM", "StartingRole", "BusyRole", "ReadyRole"]


def test_topology_carries_the_optional_elements(api, emulator):
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "grouped", "affinity_group": "group1", "extended_properties": {"ResourceGroup": "grouped"},
         "compute_capabilities": {"web_worker_role_sizes": ["Small"], "virtual_machines_role_sizes": []},
         "deployments": [{"name": "d", "slot": "production", "persistent_vm_downtime": False, "roles": [
             {"name": "Front", "instances": 1, "endpoints": [{"name": "https", "protocol": "https", "port": 443,
                                                              "local_port": 8443}]},
             {"name": "WebRole1", "instances": 1, "endpoints": []}]}]},
        {"name": "plain", "location": "North Europe", "deployments": [
            {"name": "p", "slot": "staging", "roles": [{"name": "WebRole1"}, {"name": "WorkerRole1"}]}]}]})
    listed = api("GET", "/services/hostedservices").text
    assert "<Description i:nil=\"true\"/><AffinityGroup>group1</AffinityGroup><Label>" in listed
    assert ("<ComputeCapabilities><WebWorkerRoleSizes><RoleSize>Small</RoleSize></WebWorkerRoleSizes>"
            "<VirtualMachinesRoleSizes/></ComputeCapabilities></HostedService>") in listed
    assert "<Location>North Europe</Location>" in listed and listed.count("<RoleSize>Standard_G5</RoleSize>") == 1
    assert ("<ExtendedProperties><ExtendedProperty><Name>ResourceGroup</Name><Value>grouped</Value></ExtendedProperty>"
            "</ExtendedProperties>") in listed and "<ExtendedProperties/>" in listed
    assert "ComputeCapabilities" not in api("GET", "/services/hostedservices/grouped").text
    grouped = api("GET", "/services/hostedservices/grouped/deploymentslots/production").text
    assert "PersistentVMDowntime" not in grouped
    vip = re.search(r"<VirtualIP><Address>([\d.]+)</Address>", grouped).group(1)
    assert ("<IpAddress>%s</IpAddress><InstanceEndpoints><InstanceEndpoint><Name>https</Name><Vip>%s</Vip>"
            "<PublicPort>443</PublicPort><LocalPort>8443</LocalPort><Protocol>https</Protocol></InstanceEndpoint>"
            "</InstanceEndpoints><PowerState>" % (re.search(r"<IpAddress>([\d.]+)</IpAddress>", grouped).group(1), vip)
            ) in grouped
    assert ("<ConfigurationSetType>NetworkConfiguration</ConfigurationSetType><InputEndpoints><InputEndpoint>"
            "<Port>443</Port><Protocol>https</Protocol><Vip>%s</Vip><VirtualIPName>dContractContract</VirtualIPName>"
            "</InputEndpoint></InputEndpoints><SubnetNames/>" % vip) in grouped
    assert grouped.count("<InstanceEndpoints>") == 1, "an empty endpoint list means none"
    plain = api("GET", "/services/hostedservices/plain/deploymentslots/staging").text
    assert plain.count("<InstanceEndpoint><Name>Endpoint1</Name>") == 1, "web roles get an HTTP endpoint by default"
    created = re.search(r"<CreatedTime>([^<]+)</CreatedTime>", plain).group(1)
    downtime = re.search(r"<PersistentVMDowntime><StartTime>([^<]+)</StartTime><EndTime>(\d{4})([^<]+)</EndTime>"
                         r"<Status>PersistentVMUpdateScheduled</Status></PersistentVMDowntime><VirtualIPs>", plain)
    assert downtime.group(1) == created and int(downtime.group(2)) == int(created[:4]) + 1


@pytest.mark.parametrize("service,message", [
    ({"name": "x", "deployments": [{"name": "d", "roles": [{"name": "R", "endpoints": [{"port": 80}]}]}]},
     "every endpoint needs a name and a port"),
    ({"name": "x", "deployments": [{"name": "d", "roles": [{"name": "R", "endpoints": [
        {"name": "e", "port": 80, "protocol": "ftp"}]}]}]}, "endpoint protocol must be one of"),
    ({"name": "x", "deployments": [{"name": "d", "persistent_vm_downtime": "soon", "roles": []}]},
     "persistent_vm_downtime must be true, false or a mapping"),
    ({"name": "x", "extended_properties": ["a"]}, "extended_properties must be a mapping"),
    ({"name": "x", "compute_capabilities": {"web_worker_role_sizes": "Small"}}, "role sizes must be lists"),
])
def test_topology_rejects_bad_optional_elements(emulator, service, message):
    response = requests.post("%s/topology" % emulator.admin, json={"cloud_services": [service]},
                             headers=emulator.admin_headers, verify=emulator.info["ca_path"], timeout=10)
    assert response.status_code == 400 and message in response.json()["error"]


def test_overlapping_operations_keep_the_instance_down_until_the_last_one_ends(api, emulator):
    """A reboot sent while a reimage's instance recovers: the first operation's ReadyRole must not show."""
    emulator.timing(operation_seconds=1.0, recovery_seconds=1.5)
    assert api.reimage("WebRole1_IN_0").status_code == 202
    time.sleep(1.5)  # the reimage has ended; the instance recovers until 2.5 s
    assert api.reimage("WebRole1_IN_0", comp="reboot").status_code == 202
    time.sleep(3.0)
    statuses = [(e["time"], e["status"]) for e in emulator.events("instance_status") if e["instance"] == "WebRole1_IN_0"]
    ready = [t for t, status in statuses if status == "ReadyRole"]
    reboot_accepted = emulator.accepted("reboot")[0]["time"]
    assert len(ready) == 1 and ready[0] > reboot_accepted + 1.0 + 1.5 - 0.1, statuses
    assert collections.Counter(s for _t, s in statuses)["StoppingRole"] == 2
    assert emulator.availability()["contoso-web/contoso-web-prod"]["max_unavailable_instances"] == 1


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", "Bearer {token}x", "bearer {token}",
                                           "{token}", "Basic {token}", "Bearer  {token}"])
def test_the_admin_api_needs_its_token(emulator, authorization):
    """Any local user reaches the port: only the owner of connection.json (0600) may drive the admin API."""
    token = emulator.info["admin_token"]
    headers = {} if authorization is None else {"Authorization": authorization.format(token=token)}
    spec = {"cloud_services": [{"name": "planted", "deployments": []}]}
    for method, path, payload in (("POST", "faults", {"action": {"status": 503}}), ("POST", "topology", spec),
                                  ("GET", "events", None), ("POST", "reset", None), ("GET", "state", None)):
        response = requests.request(method, "%s/%s" % (emulator.admin, path), json=payload, headers=headers,
                                    verify=emulator.info["ca_path"], timeout=10)
        assert response.status_code == 401 and "admin_token" in response.json()["error"], (method, path)
    assert emulator.server.faults.armed == [] and emulator.server.emulator.service("planted") is None
    assert len(token) >= 32 and requests.get(emulator.admin + "/state", headers=emulator.admin_headers,
                                             verify=emulator.info["ca_path"], timeout=10).status_code == 200

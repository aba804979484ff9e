"""The structural diff finds each kind of departure it claims to find (mutated copies of real answers)."""
import re

import pytest

from tests.emulator_tests import recorded
from tests.emulator_tests.structural_diff import Sample, compare, parse, value_format
from tests.helpers import RECORDINGS

NS = 'xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
HEADERS = {"Cache-Control": "no-cache", "Content-Length": "10", "Content-Type": "application/xml; charset=utf-8",
           "Date": "Thu, 02 Jul 2015 17:58:28 GMT", "x-ms-request-id": "714a83cebb11b973b9787b6b32b599ea",
           "Server": "1.0.6198.243 (rd_rdfe_stable.150618-1025) Microsoft-HTTPAPI/2.0", "x-ms-servedbyregion": "ussouth3"}
OPERATION = ("<Operation %s><ID>904b574f-8c60-b8cd-9906-593a7c53b6d5</ID><Status>Succeeded</Status>"
             "<HttpStatusCode>200</HttpStatusCode></Operation>" % NS)


def _kinds(ours, theirs, headers=None, their_headers=None):
    recorded_samples = [Sample("recorded", 200, their_headers or HEADERS, body) for body in theirs]
    return {str(f) for f in compare([Sample("ours", 200, headers or HEADERS, ours)], recorded_samples)}


def test_identical_answers_have_no_findings():
    assert _kinds(OPERATION, [OPERATION]) == set()


@pytest.mark.parametrize("mutated,finding", [
    ('<?xml version="1.0" encoding="utf-8"?>' + OPERATION, "declaration - ours has an XML declaration"),
    (OPERATION.replace("<Status>", "\n  <Status>"), "whitespace - ours has whitespace between elements"),
    (OPERATION.replace(' xmlns:i="http://www.w3.org/2001/XMLSchema-instance"', ""),
     'root-attributes Operation xmlns=http://schemas.microsoft.com/windowsazure'),
    (OPERATION.replace("<ID>904b574f-8c60-b8cd-9906-593a7c53b6d5</ID><Status>Succeeded</Status>",
                       "<Status>Succeeded</Status><ID>904b574f-8c60-b8cd-9906-593a7c53b6d5</ID>"),
     "order Operation Status before ID"),
    (OPERATION.replace("<HttpStatusCode>200</HttpStatusCode>", ""), "missing Operation/HttpStatusCode"),
    (OPERATION.replace("</Operation>", "<Extra>1</Extra></Operation>"), "extra Operation/Extra"),
    (OPERATION.replace("904b574f-8c60-b8cd-9906-593a7c53b6d5", "904b574f8c60b8cd9906593a7c53b6d5"),
     "value-format Operation/ID hex32 (recorded: guid)"),
    (OPERATION.replace("<Status>Succeeded</Status>", '<Status i:nil="true"/>'),
     "form Operation/Status nil (recorded: value)"),
])
def test_each_kind_of_departure_is_found(mutated, finding):
    assert finding in _kinds(mutated, [OPERATION])


def test_empty_nil_and_open_closed_forms_are_told_apart():
    root, loose = parse('<a><b/><c></c><d i:nil="true"/><e>x</e><f><g/></f></a>')
    assert not loose
    assert [(n.name, n.form) for n in root.children] == [
        ("b", "empty"), ("c", "open-closed"), ("d", "nil"), ("e", "value"), ("f", "parent")]
    theirs = "<R %s><X/></R>" % NS
    assert "form R/X open-closed (recorded: empty)" in _kinds("<R %s><X></X></R>" % NS, [theirs])
    assert "form R/X nil (recorded: empty)" in _kinds('<R %s><X i:nil="true"/></R>' % NS, [theirs])


def test_namespace_prefixes_count():
    theirs = '<R %s><P xmlns:a="urn:x"><a:Name>n</a:Name></P></R>' % NS
    found = _kinds('<R %s><P xmlns:d2p1="urn:x"><d2p1:Name>n</d2p1:Name></P></R>' % NS, [theirs])
    assert {"extra R/P/d2p1:Name", "attribute R/P extra xmlns:d2p1=urn:x", "attribute R/P missing xmlns:a=urn:x",
            "missing R/P/a:Name"} <= found


def test_presence_is_per_parent_element_and_optional_children_are_reported_once():
    theirs = ["<R %s><S><A>1</A><B>1</B></S><S><A>2</A></S></R>" % NS]
    assert _kinds("<R %s><S><A>1</A></S></R>" % NS, theirs) == {"not-produced R/S/B"}
    assert "missing R/S/A" in _kinds("<R %s><S><B>1</B></S></R>" % NS, theirs)


def test_headers_are_compared_by_name_and_format():
    extra = dict(HEADERS, **{"Strict-Transport-Security": "max-age=1"})
    assert "header-extra strict-transport-security" in _kinds(OPERATION, [OPERATION], headers=extra)
    missing = {k: v for k, v in HEADERS.items() if k != "x-ms-servedbyregion"}
    assert "header-missing x-ms-servedbyregion" in _kinds(OPERATION, [OPERATION], headers=missing)
    dashed = dict(HEADERS, **{"x-ms-request-id": "714a83ce-bb11-b973-b978-7b6b32b599ea"})
    assert "header-format x-ms-request-id guid (recorded: hex32)" in _kinds(OPERATION, [OPERATION], headers=dashed)
    chunked = {k: v for k, v in HEADERS.items() if k != "Content-Length"}
    chunked["Transfer-Encoding"] = "chunked"
    assert _kinds(OPERATION, [OPERATION], their_headers=chunked) == set(), "framing: chunked equals Content-Length"


@pytest.mark.parametrize("value,kind", [
    ("2015-07-02T17:58:28Z", "datetime"), ("false", "bool"), ("42", "int"), ("100.72.58.52", "ipv4"),
    ("d464b1376e9e4c9988f918fb5d3deeec", "hex32"), ("http://x.cloudapp.net/", "url"), ("ZG5kdGVzdG1hcnNhY3M=", "base64"),
    ("WebRole1", "text"), ("Thu, 02 Jul 2015 17:58:28 GMT", "http-date"), ("WA-GUEST-OS-2.40_201506-01", "text"),
])
def test_value_formats(value, kind):
    assert value_format(value) == kind


@pytest.mark.skipif(not (RECORDINGS / "bodies").is_dir(), reason="recordings not found")
def test_the_recordings_agree_with_themselves_and_a_real_departure_shows():
    """Every recorded Get Deployment against all of them finds no order, form or format departure; a copy with the
    PaaS RoleInstance children reordered does."""
    deployments = recorded.by_operation(RECORDINGS)["Get Deployment"]
    kinds = {f.kind for f in compare(deployments, deployments)}
    assert not kinds & {"order", "form", "value-format", "declaration", "whitespace", "root-attributes"}, kinds
    real = next(s for s in deployments if s.source.endswith("xplat_paas_00_Deployment_200_dndtestmarsacs.xml"))
    swapped = re.sub(r"(<IpAddress>[^<]*</IpAddress>)(<InstanceEndpoints>.*?</InstanceEndpoints>)", r"\2\1", real.body)
    assert swapped != real.body
    found = {str(f) for f in compare([Sample("mutated", 200, real.headers, swapped)], deployments)}
    assert "order Deployment/RoleInstanceList/RoleInstance InstanceEndpoints before IpAddress" in found

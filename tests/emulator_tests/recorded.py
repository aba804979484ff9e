"""Every recorded Service Management answer, read from the recordings directory and sorted by operation.

Sources (see the recordings' README): ``bodies/`` with ``INDEX.json`` (python SDK cassettes and bodies taken
from the xplat CLI recordings), ``extracted/*.json`` (exchanges parsed from all xplat CLI recordings),
``xplat-cli/*.nock.js`` (three whole recordings, read here with a small parser of nock's ``.reply()`` calls)
and ``libcloud/`` (bodies without headers). The python cassettes' bodies are the ones in ``bodies/``.
Identical answers found in several sources count once. Nothing here is copied into the project.
"""
import json
import re

from tests.emulator_tests.structural_diff import Sample

# Hand-edited fixtures (the recordings' README lists them): not the service's bytes.
EDITED = {"operations_acc33f6756cda6fd96826394fce4c9f3.xml": "an Operation without HttpStatusCode, trimmed by hand",
          "services_storageservices_dss123.xml": "contains a literal \\' added by hand",
          "services_vmimages.xml": "pretty-printed by hand"}

_NOCK_CALL = re.compile(
    r"\.(get|post|put|delete|merge|head)\('((?:[^'\\]|\\.)*)'(?:,\s*(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\*))?\)"
    r"\s*\.reply\((\d+),\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\"\")\s*(?:,\s*(\{.*?\}))?\s*\)", re.S)
_NOCK_HEADER = re.compile(r"(?:'([^']+)'|([A-Za-z][\w-]*))\s*:\s*'((?:[^'\\]|\\.)*)'")


def _js_string(literal):
    body = literal[1:-1]
    if literal[0] == "'":
        body = body.replace('"', '\\"')
    return json.loads('"%s"' % body.replace("\\'", "'"))


def _nock_samples(path):
    text = path.read_text(encoding="utf-8")
    out = []
    for index, match in enumerate(_NOCK_CALL.finditer(text)):
        method, target, status, body, headers = match.groups()
        names = {}
        for quoted, bare, value in _NOCK_HEADER.findall(headers or ""):
            names[quoted or bare] = value.replace("\\'", "'")
        out.append(Sample("%s#%d" % (path.name, index), int(status), names, _js_string(body), method.upper(),
                          target))
    return out


def _split_request(request):
    method, url = request.split(" ", 1)
    return method, "/" + url.split("://", 1)[-1].split("/", 1)[-1]


def load(root):
    """All recorded answers, de-duplicated, as Samples."""
    samples = []
    bodies = root / "bodies"
    for entry in json.loads((bodies / "INDEX.json").read_text(encoding="utf-8")):
        method, path = _split_request(entry["request"])
        samples.append(Sample("bodies/" + entry["file"], entry["status"], entry["response_headers"],
                              (bodies / entry["file"]).read_text(encoding="utf-8"), method, path))
    for source in sorted((root / "extracted").glob("*.json")):
        records = json.loads(source.read_text(encoding="utf-8"))
        flat = [r for item in records for r in (item if isinstance(item, list) else [item])]
        for number, record in enumerate(flat):
            samples.append(Sample("extracted/%s#%d" % (source.name, number), record["status"],
                                  record["response_headers"], record["response_body"], record["method"],
                                  record["path"]))
    for source in sorted((root / "xplat-cli").glob("*.nock.js")):
        samples.extend(_nock_samples(source))
    for source in sorted((root / "libcloud").glob("*.xml")):
        if any(source.name.endswith(name) for name in EDITED):
            continue
        body = source.read_text(encoding="utf-8")
        samples.append(Sample("libcloud/" + source.name, 404 if "<Error" in body[:10] else 200, None, body, "GET", None))
    unique, seen = [], set()
    for sample in samples:
        key = (sample.status, sample.body, tuple(sorted((sample.headers or {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(sample)
    return unique


def _root_name(body):
    match = re.match(r"\s*(?:<\?xml[^>]*>\s*)?<([\w:]+)", body)
    return match.group(1) if match else None


def operation_of(sample):
    """The operation of the emulator's that a recorded answer belongs to, or None."""
    path = (sample.path or "").split("?", 1)[0]
    query = (sample.path or "").partition("?")[2]
    root = _root_name(sample.body)
    if sample.status == 307:
        return "Redirect (307)"  # the only recorded ones come from the Websites API, on the same front end
    if "/WebSpaces" in path or "/sites" in path:
        return None  # the Websites API: other bodies and headers
    if root == "Error":
        return "Error"
    if root == "HostedServices":
        return "List Cloud Services"
    if root == "HostedService":
        embedded = "<Deployments" in sample.body or "embed-detail=true" in query.lower()
        return "Get Cloud Service Properties (embed-detail)" if embedded else "Get Cloud Service Properties"
    if root == "Deployment":
        return "Get Deployment"
    if root == "Operation" and "<ID>" in sample.body:
        status = re.search(r"<Status>(\w+)</Status>", sample.body).group(1)
        return "Get Operation Status (%s)" % status
    if sample.status == 202 and "/roleinstances/" in path.lower():
        return "Role instance operation (202)"
    return None


def by_operation(root):
    grouped = {}
    for sample in load(root):
        operation = operation_of(sample)
        if operation:
            grouped.setdefault(operation, []).append(sample)
    return grouped

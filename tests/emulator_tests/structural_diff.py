"""A structural diff of Service Management answers: the emulator's against every recording of one operation.

What is compared (each difference is a ``Finding``):
  body      XML declaration, whitespace between elements, root element and its namespace declarations;
  paths     every element path (qualified names as written, so a namespace prefix counts), and for each
            parent the relative order of its children;
  presence  a path every recording has that an answer of ours lacks (``missing``), one no recording has
            (``extra``), one some recordings have that we never produce (``not-produced``);
  forms     how an element is written: with a value, with children, empty (``<X/>``), open-closed
            (``<X></X>``) or nil (``i:nil="true"``);
  formats   the kind of each value (integer, lower-case boolean, ``YYYY-MM-DDTHH:MM:SSZ``, dashed GUID,
            32 hex digits, IPv4 address, URL, base64 of text, ...), never the value itself;
  headers   the set of response header names, and the kind of each header's value (exact value for
            ``Content-Type``, ``Cache-Control`` and ``Strict-Transport-Security``).
Ids, dates, names and addresses differ by nature and are never compared, only their formats.

Presence is counted over recordings of web/worker-role (PaaS) deployments when there are any: the emulator
models only those, and a virtual machine's extra elements are not departures. Order, forms and formats use
every recording.
"""
import base64
import collections
import re
import xml.parsers.expat

XSI_NIL_SUFFIX = ":nil"
HOP_BY_HOP = {"connection", "keep-alive"}
# Header values compared as they are; the others by their format.
EXACT_HEADERS = {"content-type", "cache-control", "strict-transport-security"}


class Finding(collections.namedtuple("Finding", "kind path detail")):
    """One difference: its kind, the element path (or header name) and what differs."""

    def __str__(self):
        return "%s %s%s" % (self.kind, self.path, (" " + self.detail) if self.detail else "")


class Sample:
    """One HTTP answer: status, headers (None when the source kept none) and body text."""

    def __init__(self, source, status, headers, body, method=None, path=None):
        self.source, self.status, self.method, self.path = source, status, method, path
        self.headers = None if headers is None else {k.lower(): str(v) for k, v in headers.items()}
        self.body = body or ""

    @property
    def is_vm_deployment(self):
        return 'i:type="PersistentVMRole"' in self.body

    def __repr__(self):
        return "<Sample %s %s>" % (self.status, self.source)


class Node:
    __slots__ = ("name", "attrs", "children", "text", "self_closed")

    def __init__(self, name, attrs):
        self.name, self.attrs, self.children, self.text, self.self_closed = name, attrs, [], "", False

    @property
    def form(self):
        if self.children:
            return "parent"
        if any(k.endswith(XSI_NIL_SUFFIX) and v == "true" for k, v in self.attrs.items()):
            return "nil"
        if self.text.strip():
            return "value"
        return "empty" if self.self_closed else "open-closed"


def parse(text):
    """The element tree with qualified names as written (expat without namespace processing)."""
    raw = text.encode("utf-8")
    parser = xml.parsers.expat.ParserCreate()
    stack, roots = [], []
    loose = []

    def start(name, attrs):
        node = Node(name, dict(attrs))
        if stack:
            stack[-1].children.append(node)
        else:
            roots.append(node)
        stack.append(node)

    def end(name):  # pylint: disable=unused-argument
        node = stack.pop()
        at = parser.CurrentByteIndex
        if node.children and node.text:
            loose.append(node.name)
        # An element written <X/> ends right after its own "/>"; one written <X></X> ends at its "</X>".
        node.self_closed = not node.children and not node.text and raw[at - 2:at] == b"/>"

    def data(chars):
        stack[-1].text += chars

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, data
    parser.Parse(raw, True)
    return roots[0], bool(loose)


_FORMATS = [
    ("int", re.compile(r"-?\d+")),
    ("bool", re.compile(r"true|false")),
    ("Bool", re.compile(r"True|False")),
    ("datetime", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")),
    ("datetime-fraction", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z?")),
    ("http-date", re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                             r"\d{4} \d\d:\d\d:\d\d GMT")),
    ("guid", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("hex32", re.compile(r"[0-9a-f]{32}")),
    ("HEX", re.compile(r"[0-9A-F]{16,}")),
    ("ipv4", re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")),
    ("url", re.compile(r"https?://[^\s/]+(/\S*)?")),
    ("rdfe-server", re.compile(r"1\.0\.\d+\.\d+ \(rd_rdfe_stable\.\d{6}-\d{4}\)( Microsoft-HTTPAPI/2\.0)+")),
    ("path", re.compile(r"/\S+")),
]
_BASE64 = re.compile(r"[A-Za-z0-9+/]{2,}={0,2}")


def value_format(text):
    """The kind of a value: what a parser relies on, never the value itself."""
    for name, pattern in _FORMATS:
        if pattern.fullmatch(text):
            return name
    if len(text) >= 8 and len(text) % 4 == 0 and _BASE64.fullmatch(text):
        try:
            decoded = base64.b64decode(text, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if decoded is not None and (decoded.isprintable() or decoded.lstrip().startswith("<")):
            return "base64"  # of text or of an XML document (Configuration)
    return "text"


def _significant_attrs(attrs):
    """Attribute names, with the value where it is part of the structure (namespaces, xsi types)."""
    out = set()
    for key, value in attrs.items():
        if key.startswith("xmlns") or key.endswith(":type"):
            out.add("%s=%s" % (key, value))
        elif not key.endswith(XSI_NIL_SUFFIX):
            out.add(key)
    return out


class Shape:
    """Everything the diff compares, gathered from one body."""

    def __init__(self, sample):
        self.sample = sample
        self.declaration = sample.body.lstrip().startswith("<?xml")
        self.root = None
        self.paths = set()
        self.pairs = collections.defaultdict(set)      # parent path -> {(earlier child, later child)}
        self.forms = collections.defaultdict(set)      # path -> {form}
        self.formats = collections.defaultdict(set)    # path -> {value format}
        self.attrs = collections.defaultdict(set)      # path -> {attribute}
        self.instances = collections.Counter()         # path -> how many elements
        self.holding = collections.Counter()           # path -> how many of its parent elements hold one
        self.loose_whitespace = False
        if not sample.body.strip():
            return
        root, self.loose_whitespace = parse(sample.body)
        self.root = (root.name, frozenset(_significant_attrs(root.attrs)))
        self._walk(root, root.name)

    def _walk(self, node, path):
        self.paths.add(path)
        self.instances[path] += 1
        for name in {child.name for child in node.children}:
            self.holding[path + "/" + name] += 1
        self.forms[path].add(node.form)
        self.attrs[path] |= _significant_attrs(node.attrs)
        if node.form == "value":
            self.formats[path].add(value_format(node.text))
        seen = []
        for child in node.children:
            if child.name not in seen:
                seen.append(child.name)
            self._walk(child, path + "/" + child.name)
        for i, earlier in enumerate(seen):
            for later in seen[i + 1:]:
                self.pairs[path].add((earlier, later))


def _header_shape(headers):
    names, formats = set(), {}
    for name, value in headers.items():
        if name in HOP_BY_HOP:
            continue
        if name == "transfer-encoding":  # chunked or Content-Length: the same framing of the body
            name, value = "content-length", "0"
        names.add(name)
        formats[name] = value if name in EXACT_HEADERS else value_format(value)
    return names, formats


def compare(ours, recorded):
    """Findings for our samples against the recorded samples of the same operation."""
    findings = set()
    theirs = [Shape(s) for s in recorded]
    mine = [Shape(s) for s in ours]
    presence_basis = [t for t in theirs if not t.sample.is_vm_deployment] or theirs

    # body: declaration, whitespace, root
    if any(m.declaration for m in mine) and not any(t.declaration for t in theirs):
        findings.add(Finding("declaration", "-", "ours has an XML declaration"))
    if any(m.loose_whitespace for m in mine) and not any(t.loose_whitespace for t in theirs):
        findings.add(Finding("whitespace", "-", "ours has whitespace between elements"))
    recorded_roots = {t.root for t in theirs if t.root}
    for m in mine:
        if m.root and recorded_roots and m.root not in recorded_roots:
            names = {r[0] for r in recorded_roots}
            if m.root[0] not in names:
                findings.add(Finding("root", m.root[0], "recorded roots are %s" % ", ".join(sorted(names))))
            else:
                findings.add(Finding("root-attributes", m.root[0], " ".join(sorted(m.root[1]))))
        if not m.root and recorded_roots:
            findings.add(Finding("missing", "-", "ours has no body"))
        if m.root and not recorded_roots and any(t.sample.body == "" for t in theirs):
            findings.add(Finding("extra", m.root[0], "recordings have no body"))

    # order: a pair of children in our order that some recording has the other way round
    for m in mine:
        for parent, pairs in m.pairs.items():
            for earlier, later in pairs:
                for t in theirs:
                    if (later, earlier) in t.pairs.get(parent, ()):
                        findings.add(Finding("order", parent, "%s before %s" % (earlier, later)))
                        break

    # presence: a child every recorded parent element holds must be in every parent element of ours
    recorded_paths = set().union(*(t.paths for t in theirs)) if theirs else set()
    basis_paths = set().union(*(t.paths for t in presence_basis)) if presence_basis else set()
    parents = sum((t.instances for t in presence_basis), collections.Counter())
    holding = sum((t.holding for t in presence_basis), collections.Counter())
    always = {path for path, count in holding.items() if count == parents[path.rsplit("/", 1)[0]]}
    always |= {t.root[0] for t in presence_basis if t.root}
    our_paths = set().union(*(m.paths for m in mine)) if mine else set()
    for m in mine:
        for path in always:
            parent = path.rsplit("/", 1)[0] if "/" in path else None
            if parent is None:
                continue
            if m.instances[parent] and m.holding[path] < m.instances[parent]:
                findings.add(Finding("missing", path, ""))
    for path in our_paths - recorded_paths:
        findings.add(Finding("extra", path, ""))
    for path in basis_paths - our_paths:
        parent = path.rsplit("/", 1)[0]
        if parent in our_paths:  # report the top of a missing subtree only
            findings.add(Finding("not-produced", path, ""))

    # forms, value formats, attributes of the paths both sides have
    for path in our_paths & recorded_paths:
        their_forms = set().union(*(t.forms.get(path, set()) for t in theirs))
        their_formats = set().union(*(t.formats.get(path, set()) for t in theirs))
        their_attrs = set().union(*(t.attrs.get(path, set()) for t in theirs))
        for m in mine:
            for form in m.forms.get(path, ()):
                if form not in their_forms:
                    findings.add(Finding("form", path, "%s (recorded: %s)" % (form, ", ".join(sorted(their_forms)))))
            for fmt in m.formats.get(path, ()):
                if their_formats and fmt not in their_formats:
                    findings.add(Finding("value-format", path, "%s (recorded: %s)" % (
                        fmt, ", ".join(sorted(their_formats)))))
            for attr in m.attrs.get(path, set()) - their_attrs:
                findings.add(Finding("attribute", path, "extra " + attr))
            if m.attrs.get(path) is not None and path in m.paths:
                for attr in set.intersection(*(t.attrs.get(path, set()) for t in theirs if path in t.paths)) \
                        - m.attrs[path]:
                    findings.add(Finding("attribute", path, "missing " + attr))

    # headers
    with_headers = [_header_shape(s.headers) for s in recorded if s.headers is not None]
    if with_headers:
        always_h = set.intersection(*(names for names, formats in with_headers))
        any_h = set().union(*(names for names, formats in with_headers))
        their_hformats = collections.defaultdict(set)
        for names, formats in with_headers:
            for name, fmt in formats.items():
                their_hformats[name].add(fmt)
        for sample in ours:
            names, formats = _header_shape(sample.headers or {})
            for name in always_h - names:
                findings.add(Finding("header-missing", name, ""))
            for name in names - any_h:
                findings.add(Finding("header-extra", name, ""))
            for name in names & any_h:
                if formats[name] not in their_hformats[name]:
                    findings.add(Finding("header-format", name, "%s (recorded: %s)" % (
                        formats[name], ", ".join(sorted(their_hformats[name])))))
    return findings


def summary(recorded):
    """How many recordings, from how many sources, and how many with headers (for the report)."""
    return {"recordings": len(recorded), "with_headers": sum(1 for s in recorded if s.headers is not None),
            "vm_deployments": sum(1 for s in recorded if s.is_vm_deployment)}

"""Checks that a report is well-formed, self-contained HTML, with the standard library's parser (not shipped)."""
import html.parser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# SVG elements written self-closed (<line/>) are reported by the parser as start-end tags, not left open.
REFERENCE_ATTRIBUTES = {"href", "src", "xlink:href", "srcset", "action", "data", "poster", "background"}


class _Checker(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.tags, self.text, self.rows = [], [], [], [], []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._check(tag, attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self._check(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append("</%s> closes %s" % (tag, self.stack[-1] if self.stack else "nothing"))
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style":
            for needle in ("url(", "@import", "://"):
                if needle in data.lower():
                    self.problems.append("%s in the style sheet" % needle)
            return
        self.text.append(data)
        if self.stack and self.stack[-1] in ("td", "th") and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data

    def _check(self, tag, attrs):
        if tag in ("script", "link", "iframe", "object", "embed", "img", "base"):
            self.problems.append("<%s> in a self-contained report" % tag)
        for name, value in attrs:
            if name in REFERENCE_ATTRIBUTES or "://" in (value or "") or "url(" in (value or "").lower():
                self.problems.append("%s=%r on <%s>" % (name, value, tag))
            if name == "style" or name.startswith("on"):
                self.problems.append("%s attribute on <%s>" % (name, tag))


def table_rows(text):
    """The cells of every table row of the document, as lists of strings."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return checker.rows


def check_report(text):
    """Parse ``text``; returns (tags, visible text outside the style sheet). Fails on unbalanced tags, a
    reference to anything outside the document (an attribute or the style sheet naming a URL) or a script."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.doctype, "no <!DOCTYPE html>"
    assert not checker.problems, checker.problems
    assert checker.stack == [], "left open: %s" % checker.stack
    return checker.tags, "".join(checker.text)

#!/usr/bin/env python3
"""Checks a Funnel HTML report as Chromium parsed it (the DOM from `chromium --dump-dom`).

Usage: check_html_dom.py NAME DOM.html [--expect-empty CHART ...] [--expect-drawn CHART ...]

- every chart (`figure.chart[data-chart]`) has either data marks (elements of class `mark` inside
  its SVG) or a sentence (`p.empty` with words) saying why it has none, never both and never neither;
- the forest plot, when drawn, has at least three tick labels on its lift axis (`text.tick`), and
  one of them is 0;
- the charts the caller names are drawn, or replaced by their sentence, as the data require;
- counts, metrics, comparisons and data quality are HTML tables, with no `<pre>` block;
- the page is self-contained: no script, no stylesheet, image or frame from elsewhere.
"""
import re
import sys
from html.parser import HTMLParser


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], ""

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def all_text(self):
        return self.text + "".join(c.all_text() for c in self.children)


VOID = {"meta", "br", "img", "input", "link", "hr", "source", "area", "base", "col", "embed", "param", "track", "wbr"}


class Tree(HTMLParser):
    def __init__(self):
        super().__init__()
        self.root = Node("#root", [], None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text += data


def main():
    name, path = sys.argv[1], sys.argv[2]
    expect_empty, expect_drawn, mode = set(), set(), None
    for a in sys.argv[3:]:
        if a == "--expect-empty":
            mode = expect_empty
        elif a == "--expect-drawn":
            mode = expect_drawn
        else:
            mode.add(a)
    html = open(path, encoding="utf-8").read()
    t = Tree()
    t.feed(html)
    nodes = list(t.root.walk())
    problems = []

    figures = [n for n in nodes if n.tag == "figure" and "chart" in n.classes()]
    if len(figures) < 4:
        problems.append(f"only {len(figures)} charts")
    drawn, empty = [], []
    for fig in figures:
        chart = fig.attrs.get("data-chart", "?")
        inner = list(fig.walk())
        marks = [n for n in inner if "mark" in n.classes() and any(a.tag == "svg" for a in ancestors(n))]
        sentences = [n for n in inner if n.tag == "p" and "empty" in n.classes() and len(n.all_text().split()) >= 5]
        if marks and sentences:
            problems.append(f"chart {chart} has both marks and a sentence")
        elif not marks and not sentences:
            problems.append(f"chart {chart} has neither marks nor a sentence")
        (drawn if marks else empty).append(chart)
        if chart == "forest" and marks:
            ticks = [n.all_text().strip() for n in inner if n.tag == "text" and "tick" in n.classes()]
            if len(ticks) < 3:
                problems.append(f"forest plot: {len(ticks)} ticks on the lift axis")
            if not any(re.fullmatch(r"[+-]?0(\.0+)?%", x) for x in ticks):
                problems.append(f"forest plot: no tick at 0 among {ticks}")
    for chart in expect_empty:
        if chart not in empty:
            problems.append(f"chart {chart} should be a sentence (it is {'drawn' if chart in drawn else 'missing'})")
    for chart in expect_drawn:
        if chart not in drawn:
            problems.append(f"chart {chart} should be drawn (it is {'a sentence' if chart in empty else 'missing'})")

    headings = {n.all_text().strip(): n for n in nodes if n.tag == "h2"}
    for section in ["Comparisons with control", "Counts", "Metrics", "Data quality"]:
        h = headings.get(section)
        if h is None:
            problems.append(f"no section {section}")
            continue
        siblings = h.parent.children
        after = siblings[siblings.index(h) + 1:]
        nxt = next((s for s in after if s.tag in ("table", "h2")), None)
        if nxt is None or nxt.tag != "table":
            problems.append(f"section {section} has no table")
    if any(n.tag == "pre" for n in nodes):
        problems.append("a <pre> block is left")
    segments = [n for n in nodes if n.tag == "details" and n.attrs.get("data-dimension")]
    if "Segments" in headings and not segments and "No segment dimensions" not in html:
        problems.append("segments are neither collapsible tables nor a sentence")
    if any(n.tag == "script" for n in nodes):
        problems.append("the page has a script")
    for n in nodes:
        for key in ("src", "href"):
            v = n.attrs.get(key) or ""
            if re.match(r"(https?:)?//", v):
                problems.append(f"<{n.tag} {key}={v}> loads from the network")
    if problems:
        print(f"{name}: " + "; ".join(problems))
        sys.exit(1)
    sig = sum(1 for n in nodes if n.tag == "tr" and "sig" in n.classes())
    print(f"{name}: {len(drawn)} charts drawn ({', '.join(drawn)}), {len(empty)} as sentences ({', '.join(empty) or 'none'}), "
          f"{len(segments)} segment tables, {sig} significant rows: ok")


def ancestors(n):
    while n.parent is not None:
        n = n.parent
        yield n


if __name__ == "__main__":
    main()

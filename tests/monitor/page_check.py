#!/usr/bin/env python3
"""Checks the DOM of herd's run page (live or report) as headless Chromium
left it (--dump-dom): every chart drew data (data-points > 0, set by
page.js after uPlot drew), the named event kinds appear as markers on the
time charts and as rows of the events table, and the tables are filled.
Usage: page_check.py DOM.html [--marker KIND]... [--min-members N]
                     [--summary-failures N] [--missing]"""
import argparse
import sys
from html.parser import HTMLParser

CHARTS = ["c-sps", "c-loss", "c-acc", "c-world", "c-mfu", "c-rsps", "c-rstep",
          "c-split"]


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts, self.table, self.rows, self.cells = {}, None, {}, None
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id") in CHARTS:
            self.charts[a["id"]] = a
        if tag == "table" and a.get("id"):
            self.table = a["id"]
            self.rows.setdefault(self.table, [])
        elif tag == "tr" and self.table:
            self.rows[self.table].append([])
        elif tag in ("td", "th") and self.table and self.rows[self.table]:
            self.cells = self.rows[self.table][-1]
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        if tag in ("td", "th"):
            self.cells = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cells is not None and self.cells:
            self.cells[-1] += data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dom")
    ap.add_argument("--marker", action="append", default=[])
    ap.add_argument("--min-members", type=int, default=0)
    ap.add_argument("--summary-failures", type=int, default=-1)
    ap.add_argument("--allow-empty", action="append", default=[],
                    help="a chart that may lack data (old events files)")
    a = ap.parse_args()
    p = Page()
    p.feed(open(a.dom, encoding="utf-8", errors="replace").read())
    bad = []
    for c in CHARTS:
        attrs = p.charts.get(c)
        if attrs is None:
            bad.append(f"{c}: no such element")
            continue
        points = int(attrs.get("data-points") or 0)
        if points <= 0 and c not in a.allow_empty:
            bad.append(f"{c}: no data drawn")
        print(f"{c}: {points} points, markers: {attrs.get('data-marker-kinds', '')}")
    for kind in a.marker:
        if not any(kind in (p.charts.get(c, {}).get("data-marker-kinds") or "").split()
                   for c in CHARTS):
            bad.append(f"no {kind} marker on any chart")
        if not any(len(r) > 1 and r[1] == kind for r in p.rows.get("events", [])):
            bad.append(f"no {kind} row in the events table")
    members = [r for r in p.rows.get("members", [])[1:] if len(r) > 3]
    if len(members) < a.min_members:
        bad.append(f"members table: {len(members)} rows, want {a.min_members}")
    if a.summary_failures >= 0:
        fails = len(p.rows.get("failures", [])[1:])
        if fails < a.summary_failures:
            bad.append(f"summary: {fails} failures listed, want {a.summary_failures}")
    for line in bad:
        print("FAIL:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

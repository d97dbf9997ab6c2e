#!/usr/bin/python3
"""What a ctest run did and did not test: passed, failed and skipped per
label, then every skip with its reason, so a skipped test is never counted
as a pass (issue 15). `make test` prints it after each ctest run.

Usage: ci_summary.py JUNIT_XML BUILD_DIR
  JUNIT_XML  ctest --output-junit's file (results and each test's output)
  BUILD_DIR  the build tree, asked for each test's labels
             (ctest --show-only=json-v1)
Exits 0 whatever the results: the ctest exit status is the verdict.
"""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def labels_by_test(build_dir):
    out = subprocess.run(["ctest", "--show-only=json-v1"], cwd=build_dir,
                         capture_output=True, text=True, check=True).stdout
    labels = {}
    for test in json.loads(out).get("tests", []):
        props = {p["name"]: p["value"] for p in test.get("properties", [])}
        labels[test["name"]] = props.get("LABELS") or ["(none)"]
    return labels


def skip_reason(case):
    """The test's own words (its last line naming a skip), else ctest's."""
    text = case.findtext("system-out") or ""
    lines = [l.strip() for l in text.splitlines() if "skip" in l.lower()]
    if lines:
        return lines[-1][:200]
    skipped = case.find("skipped")
    return skipped.get("message", "skipped") if skipped is not None else "not run"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    junit, build_dir = sys.argv[1], sys.argv[2]
    try:
        cases = ET.parse(junit).getroot().iter("testcase")
        labels = labels_by_test(build_dir)
    except (OSError, ET.ParseError, subprocess.CalledProcessError, ValueError) as e:
        print(f"ci_summary: no summary ({e})")
        return
    counts = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})
    skips = []
    for case in cases:
        name, status = case.get("name"), case.get("status")
        kind = {"run": "passed", "fail": "failed"}.get(status, "skipped")
        for label in labels.get(name, ["(none)"]):
            counts[label][kind] += 1
        if kind == "skipped":
            skips.append((name, ",".join(labels.get(name, [])), skip_reason(case)))
    print(f"\n{'label':<14}{'passed':>8}{'failed':>8}{'skipped':>9}")
    for label in sorted(counts):
        c = counts[label]
        print(f"{label:<14}{c['passed']:>8}{c['failed']:>8}{c['skipped']:>9}")
    if skips:
        print("\nskipped (not tested here):")
        for name, label, reason in skips:
            print(f"  {name} [{label}]: {reason}")
    else:
        print("\nskipped: none")


if __name__ == "__main__":
    main()

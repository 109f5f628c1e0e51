#!/usr/bin/env python3
"""Judges checkov's JSON reports against deploy/tests/checkov-policy.json.

Usage: checkov_gate.py POLICY SCAN=REPORT.json...
  e.g. checkov_gate.py checkov-policy.json modules=m.json example=e.json dockerfile=d.json

Fails when a scan has a failed check or a parsing error, when a skip has no
reason, or when a must-pass check did not pass on its resource.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def reports(path: str) -> list[dict]:
    """checkov prints one JSON document, or a list of them (one per framework)."""
    text = Path(path).read_text()
    decoder, i, out = json.JSONDecoder(), 0, []
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = decoder.raw_decode(text, i)
        out.extend(obj if isinstance(obj, list) else [obj])
    return out


def matches(resource: str, wanted: str) -> bool:
    return resource == wanted or resource.startswith(wanted + "[") or (wanted.endswith(".") and resource.startswith(wanted))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    policy = json.loads(Path(argv[0]).read_text())
    scans: dict[str, dict[str, list]] = {}
    problems: list[str] = []
    for arg in argv[1:]:
        name, _, path = arg.partition("=")
        merged = {"passed_checks": [], "failed_checks": [], "skipped_checks": [], "parsing_errors": []}
        for rep in reports(path):
            for key in merged:
                merged[key].extend(rep.get("results", {}).get(key, []) if key != "parsing_errors" else rep.get("results", {}).get(key, []) or [])
        scans[name] = merged
        for f in merged["failed_checks"]:
            problems.append(f"{name}: FAILED {f['check_id']} on {f['resource']} ({f['file_path']}): {f['check_name']}")
        for p in merged["parsing_errors"]:
            problems.append(f"{name}: could not parse {p}")
        for s in merged["skipped_checks"]:
            reason = (s.get("check_result") or {}).get("suppress_comment", "")
            if not reason or reason.strip().lower() in ("no comment provided", ""):
                problems.append(f"{name}: skip of {s['check_id']} on {s['resource']} has no reason")
        print(f"checkov {name}: {len(merged['passed_checks'])} passed, {len(merged['failed_checks'])} failed, "
              f"{len(merged['skipped_checks'])} skipped with a reason")
    for rule in policy["must_pass"]:
        scan = scans.get(rule["scan"])
        if scan is None:
            problems.append(f"must-pass {rule['id']}: scan {rule['scan']!r} was not run")
            continue
        passed = [c for c in scan["passed_checks"] if c["check_id"] == rule["id"] and matches(c["resource"], rule["resource"])]
        if passed:
            print(f"  ok   {rule['id']} on {rule['resource']} ({rule['why']})")
        else:
            problems.append(f"must-pass {rule['id']} ({rule['why']}) did not pass on {rule['resource']} in the {rule['scan']} scan")
    for p in problems:
        print(f"  FAIL {p}")
    total = len(policy["must_pass"])
    print(f"checkov gate: {total - sum(p.startswith('must-pass') for p in problems)} of {total} must-pass checks passed, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

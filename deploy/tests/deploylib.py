"""Code shared by the deploy checks (scripts/check-deploy)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTRACT_PATH = DEPLOY / "contract.json"
TERRAFORM = DEPLOY / "terraform"


def load_contract() -> dict[str, Any]:
    return json.loads(CONTRACT_PATH.read_text())


class Report:
    """Collects failures; prints each check as ok/FAIL; exits non-zero at the end."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.count = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        self.count += 1
        if ok:
            print(f"  ok   {what}")
        else:
            msg = f"{what}" + (f": {detail}" if detail else "")
            print(f"  FAIL {msg}")
            self.failures.append(msg)
        return ok

    def equal(self, actual: Any, expected: Any, what: str) -> bool:
        return self.check(actual == expected, what, f"found {actual!r}, expected {expected!r}")

    def note(self, text: str) -> None:
        print(f"  note {text}")
        self.notes.append(text)

    def finish(self) -> int:
        passed = self.count - len(self.failures)
        print(f"{self.title}: {passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


# --- durations -------------------------------------------------------------------

_UNITS = {
    "ns": 1e-9, "nsec": 1e-9, "us": 1e-6, "usec": 1e-6, "µs": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}


def seconds(value: Any) -> float:
    """Seconds of a duration as `mcpship config` prints it ("1h 1m", "15s", "500ms") or a number."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"[0-9]+", text):
        return float(text)
    total = 0.0
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)\s*([a-zµ]+)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"not a duration: {value!r}")
    for number, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in {value!r}")
        total += float(number) * _UNITS[unit]
    return total


# --- placeholders of deploy/ecs/*.json ---------------------------------------------

SAMPLE_VALUES = {
    "ACCOUNT_ID": "123456789012",
    "AWS_REGION": "us-east-1",
    "DOMAIN_NAME": "mcp.example.com",
}


def substitute(text: str) -> str:
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: SAMPLE_VALUES.get(m.group(1), m.group(0)), text)


def task_definition() -> dict[str, Any]:
    return json.loads((DEPLOY / "ecs" / "task-definition.json").read_text())


def container(taskdef: dict[str, Any], name: str) -> dict[str, Any]:
    for c in taskdef["containerDefinitions"]:
        if c["name"] == name:
            return c
    raise KeyError(f"no container {name!r} in the task definition")


def env_map(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("environment", [])}


# --- Terraform variable defaults (python-hcl2) ---------------------------------------


def _unquote(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def _optional_defaults(type_expr: str) -> dict[str, Any]:
    """Defaults of optional(type, default) attributes in an object type expression."""
    out: dict[str, Any] = {}
    for name, raw in re.findall(r"(\w+)\s*=\s*optional\(\s*[\w()]+\s*,\s*((?:\[[^\]]*\])|(?:\"[^\"]*\")|[^,)\s]+)\s*\)", type_expr):
        raw = raw.strip()
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def variable_defaults(module_dir: Path) -> dict[str, Any]:
    """name -> default of every variable in module_dir/variables.tf; object
    types with optional(...) attributes default to their attribute defaults
    (merged under an explicit default)."""
    import hcl2  # from the deploy venv

    with open(module_dir / "variables.tf") as fh:
        parsed = hcl2.load(fh)
    out: dict[str, Any] = {}
    for block in parsed.get("variable", []):
        for raw_name, body in block.items():
            name = _unquote(raw_name)
            default = _unquote(body.get("default")) if "default" in body else None
            type_expr = str(body.get("type", ""))
            if "optional(" in type_expr:
                merged = _optional_defaults(type_expr)
                if isinstance(default, dict):
                    merged.update(default)
                out[name] = merged
            elif "default" in body:
                out[name] = default
    return out


def hcl_load(path: Path) -> dict[str, Any]:
    import hcl2

    with open(path) as fh:
        return _unquote(hcl2.load(fh))


def locals_of(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in hcl_load(path).get("locals", []):
        merged.update(block)
    return merged


def fail_exit(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)

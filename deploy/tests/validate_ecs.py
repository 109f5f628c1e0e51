#!/usr/bin/env python3
"""Validate deploy/ecs/*.json against the real ECS API model, offline.

Each file is the input of one API call (the shape `aws ecs <call>
--cli-input-json file://...` takes): task-definition*.json is
RegisterTaskDefinition input, service-definition*.json is CreateService
input. botocore ships the ECS service model; its ParamValidator checks
required members, unknown members, types and ranges. It does not check
enums, so every string is also checked against the enum of its shape here.

Placeholders (`${ACCOUNT_ID}`, `<IMAGE1_NAME>`) are replaced by sample values
first, and a placeholder this script does not know is an error, so a typo
cannot slip through as a literal string.

Usage: validate_ecs.py FILE...   (exit 1 on the first file with problems)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator

# Sample values for the placeholders the files may use.
PLACEHOLDERS = {
    "ACCOUNT_ID": "123456789012",
    "AWS_REGION": "us-east-1",
    "DOMAIN_NAME": "mcp.example.com",
    "PRIVATE_SUBNET_A": "subnet-0123456789abcdef0",
    "PRIVATE_SUBNET_B": "subnet-0123456789abcdef1",
    "TASK_SECURITY_GROUP": "sg-0123456789abcdef0",
    "BLUE_TARGET_GROUP_ID": "0123456789abcdef",
    "CLOUD_MAP_NAMESPACE_ID": "ns-0123456789abcdef",
}
# Written by CodePipeline's CodeDeployToECS action, not by us.
PIPELINE_PLACEHOLDERS = {"<IMAGE1_NAME>": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcpship:abc123"}

OPERATIONS = {
    "task-definition": "RegisterTaskDefinition",
    "service-definition": "CreateService",
}


def substitute(text: str, path: Path) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in PLACEHOLDERS:
            raise SystemExit(f"{path}: unknown placeholder ${{{name}}}; known: {', '.join(sorted(PLACEHOLDERS))}")
        return PLACEHOLDERS[name]

    text = re.sub(r"\$\{([A-Za-z0-9_]+)\}", repl, text)
    for k, v in PIPELINE_PLACEHOLDERS.items():
        text = text.replace(k, v)
    leftover = re.findall(r"<[A-Z0-9_]+>", text)
    if leftover:
        raise SystemExit(f"{path}: unknown placeholder(s) {leftover}")
    return text


def enum_errors(shape, value, where: str) -> list[str]:
    """Walks value along shape; returns enum violations (ParamValidator skips them)."""
    errors: list[str] = []
    if value is None:
        return errors
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, member_value in value.items():
            if key in shape.members:
                errors += enum_errors(shape.members[key], member_value, f"{where}.{key}")
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            errors += enum_errors(shape.member, item, f"{where}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            errors += enum_errors(shape.key, k, f"{where} key {k!r}")
            errors += enum_errors(shape.value, v, f"{where}[{k!r}]")
    elif kind == "string" and isinstance(value, str):
        allowed = shape.enum
        if allowed and value not in allowed:
            errors.append(f"{where}: {value!r} is not one of {sorted(allowed)}")
    return errors


def semantic_errors(operation: str, params: dict) -> list[str]:
    """Rules the API model cannot express but the ECS service enforces."""
    errors: list[str] = []
    if operation == "RegisterTaskDefinition":
        containers = params.get("containerDefinitions", [])
        names = {c.get("name") for c in containers}
        if "FARGATE" in params.get("requiresCompatibilities", []):
            if params.get("networkMode") != "awsvpc":
                errors.append("Fargate tasks need networkMode awsvpc")
            for c in containers:
                if (c.get("linuxParameters") or {}).get("tmpfs"):
                    errors.append(f"container {c['name']}: Fargate does not support linuxParameters.tmpfs; use a task volume")
                if c.get("privileged"):
                    errors.append(f"container {c['name']}: Fargate does not allow privileged containers")
                st = c.get("stopTimeout")
                if st is not None and not 2 <= st <= 120:
                    errors.append(f"container {c['name']}: stopTimeout {st} outside Fargate's 2..120 s")
            # Fargate's valid CPU/memory pairs (MiB) for the smallest sizes.
            cpu, mem = int(params.get("cpu", 0)), int(params.get("memory", 0))
            valid = {256: {512, 1024, 2048}, 512: set(range(1024, 4097, 1024)), 1024: set(range(2048, 8193, 1024))}
            if cpu in valid and mem not in valid[cpu]:
                errors.append(f"cpu {cpu} with memory {mem} is not a Fargate size")
        volumes = {v.get("name") for v in params.get("volumes", [])}
        total_cpu = 0
        for c in containers:
            total_cpu += c.get("cpu", 0)
            for dep in c.get("dependsOn", []):
                if dep.get("containerName") not in names:
                    errors.append(f"container {c['name']}: dependsOn unknown container {dep.get('containerName')}")
            for mp in c.get("mountPoints", []):
                if mp.get("sourceVolume") not in volumes:
                    errors.append(f"container {c['name']}: mountPoint uses undefined volume {mp.get('sourceVolume')}")
            log = c.get("logConfiguration") or {}
            if log.get("logDriver") == "awslogs":
                opts = log.get("options", {})
                if opts.get("mode") == "non-blocking" and "max-buffer-size" not in opts:
                    errors.append(f"container {c['name']}: non-blocking awslogs without max-buffer-size")
            names_env = [e["name"] for e in c.get("environment", [])] + [s["name"] for s in c.get("secrets", [])]
            dupes = {n for n in names_env if names_env.count(n) > 1}
            if dupes:
                errors.append(f"container {c['name']}: variables set twice: {sorted(dupes)}")
        if "cpu" in params and total_cpu > int(params["cpu"]):
            errors.append(f"container cpu units add up to {total_cpu}, more than the task's {params['cpu']}")
        if not any(c.get("essential", True) for c in containers):
            errors.append("no essential container")
    if operation == "CreateService":
        controller = (params.get("deploymentController") or {}).get("type", "ECS")
        if controller == "CODE_DEPLOY":
            if (params.get("serviceConnectConfiguration") or {}).get("enabled"):
                errors.append("Service Connect is not supported with the CODE_DEPLOY deployment controller")
            if "deploymentCircuitBreaker" in (params.get("deploymentConfiguration") or {}):
                errors.append("deploymentCircuitBreaker applies only to the ECS deployment controller")
            if len(params.get("loadBalancers", [])) != 1:
                errors.append("a CODE_DEPLOY service needs exactly one load balancer block (the blue target group)")
    return errors


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    session = botocore.session.get_session()
    model = session.get_service_model("ecs")
    validator = ParamValidator()
    failed = False
    for name in argv:
        path = Path(name)
        operation = next((op for prefix, op in OPERATIONS.items() if path.name.startswith(prefix)), None)
        if operation is None:
            print(f"{path}: name must start with one of {list(OPERATIONS)}")
            failed = True
            continue
        params = json.loads(substitute(path.read_text(), path))
        input_shape = model.operation_model(operation).input_shape
        report = validator.validate(params, input_shape)
        problems = []
        if report.has_errors():
            problems.append(report.generate_report())
        problems += enum_errors(input_shape, params, operation)
        if not problems:
            # The rules below assume the types are right.
            problems += semantic_errors(operation, params)
        if problems:
            failed = True
            print(f"FAIL {path} ({operation}, ecs API {model.api_version}):")
            for p in problems:
                print(f"  - {p}")
        else:
            print(f"ok   {path} is valid {operation} input (ecs API {model.api_version}, botocore model)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""deploy/pipeline/{buildspec.yml,appspec.yaml} against JSON Schemas written
from the CodeBuild and CodeDeploy references (deploy/tests/schemas/), plus the
cross-checks a schema cannot express: the appspec names the task's container
and port, the buildspec produces what the CodeDeployToECS action reads, uses
the environment the CodeBuild project sets, builds both architectures from
the repository's Dockerfile, and every command block is valid bash.

Usage: validate_pipeline.py     (exit 1 on any problem)
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import yaml

import deploylib as d

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def schema_errors(document: object, schema_file: str) -> list[str]:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(document)]


def main() -> int:
    r = d.Report("pipeline")
    c = d.load_contract()
    buildspec_path = d.DEPLOY / "pipeline" / "buildspec.yml"
    appspec_path = d.DEPLOY / "pipeline" / "appspec.yaml"
    buildspec = yaml.safe_load(buildspec_path.read_text())
    appspec = yaml.safe_load(appspec_path.read_text())

    print("schemas")
    errs = schema_errors(buildspec, "buildspec-0.2.schema.json")
    r.check(not errs, "buildspec.yml is a valid buildspec 0.2", "; ".join(errs))
    errs = schema_errors(appspec, "appspec-ecs.schema.json")
    r.check(not errs, "appspec.yaml is a valid ECS AppSpec", "; ".join(errs))

    print("appspec")
    props = appspec["Resources"][0]["TargetService"]["Properties"]
    r.equal(props["TaskDefinition"], "<TASK_DEFINITION>", "TaskDefinition is the placeholder CodeDeployToECS fills in")
    td = d.task_definition()
    names = [x["name"] for x in td["containerDefinitions"]]
    r.check(props["LoadBalancerInfo"]["ContainerName"] in names, "ContainerName is a container of the task definition",
            f"{props['LoadBalancerInfo']['ContainerName']!r} not in {names}")
    r.equal(props["LoadBalancerInfo"]["ContainerName"], c["container"]["name"], "ContainerName is the contract's")
    app = d.container(td, c["container"]["name"])
    r.equal(props["LoadBalancerInfo"]["ContainerPort"], app["portMappings"][0]["containerPort"], "ContainerPort is the task's container port")
    r.equal(props["LoadBalancerInfo"]["ContainerPort"], c["container"]["port"], "ContainerPort is the contract's")
    hooks = [list(h)[0] for h in appspec.get("Hooks", [])]
    r.check("BeforeAllowTraffic" in hooks, "a BeforeAllowTraffic hook smoke-tests the new tasks")
    r.check(hooks == sorted(hooks, key=["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"].index),
            "hooks in lifecycle order", str(hooks))

    print("buildspec")
    phases = buildspec["phases"]
    r.equal(list(phases), ["install", "pre_build", "build", "post_build"], "phases install, pre_build, build, post_build")
    commands = [cmd for p in phases.values() for cmd in p["commands"]]
    text = "\n".join(commands)
    r.check(re.search(r"docker buildx build\b", text) is not None, "builds with docker buildx")
    r.check(re.search(r"--platform\s+linux/arm64,linux/amd64\b", text) is not None, "builds linux/arm64 and linux/amd64")
    m = re.search(r"-f\s+(\S+)", text)
    r.check(bool(m) and m.group(1) == "deploy/docker/Dockerfile", "builds deploy/docker/Dockerfile", m.group(1) if m else "no -f")
    dockerfile = d.DEPLOY / "docker" / "Dockerfile"
    if not dockerfile.exists():
        r.note("deploy/docker/Dockerfile is not in this tree")
    r.check("--push" in text and re.search(r"\$\{?CODEBUILD_RESOLVED_SOURCE_VERSION", text) is not None,
            "pushes an image tagged from the source commit")
    r.check(re.search(r"cargo test\b", text) is not None, "runs the tests before building")
    r.check("describe-image-scan-findings" in text and "CRITICAL" in text, "waits for the ECR scan and fails on CRITICAL findings")
    files = buildspec["artifacts"]["files"]
    for f in ("imageDetail.json", "appspec.yaml", "taskdef.json"):
        r.check(f in files, f"artifacts include {f}")
        r.check(re.search(rf">\s*{re.escape(f)}\b|cp \S+ {re.escape(f)}\b", text) is not None, f"the build writes {f}")
    r.check("<IMAGE1_NAME>" in text, "taskdef.json carries the <IMAGE1_NAME> placeholder for the deploy action")
    src = re.search(r"cp (\S+) appspec.yaml", text)
    r.check(bool(src) and (d.ROOT / src.group(1)).resolve() == appspec_path.resolve(), "appspec.yaml is copied from deploy/pipeline")

    print("buildspec vs the pipeline module")
    pipe = d.hcl_load(d.TERRAFORM / "modules" / "pipeline" / "main.tf")
    project = next(v for blk in pipe["resource"] for k, v in blk.items() if k == "aws_codebuild_project")["this"]
    env_names = {e["name"] for e in project["environment"][0]["environment_variable"]}
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - set(buildspec.get("env", {}).get("variables", {}))
    provided_by_codebuild = {"CODEBUILD_RESOLVED_SOURCE_VERSION", "CODEBUILD_BUILD_SUCCEEDING", "AWS_DEFAULT_REGION", "PATH", "HOME"}
    assigned = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", text, re.M))
    missing = sorted(used - env_names - provided_by_codebuild - assigned)
    r.check(not missing, "every variable the buildspec reads is set by the CodeBuild project, by CodeBuild, or by the buildspec", str(missing))
    unused = sorted(env_names - used)
    r.check(not unused, "the CodeBuild project sets no variable the buildspec ignores", str(unused))
    pv = d.variable_defaults(d.TERRAFORM / "modules" / "pipeline")
    r.equal(pv["buildspec_path"], str(buildspec_path.relative_to(d.ROOT)), "the pipeline module's buildspec_path")
    deploy_cfg = None
    for stage in pipe["resource"]:
        for k, v in stage.items():
            if k == "aws_codepipeline":
                for st in v["this"]["stage"]:
                    for action in st.get("action", []):
                        if action.get("provider") == "CodeDeployToECS":
                            deploy_cfg = action["configuration"]
    r.check(deploy_cfg is not None, "the pipeline has a CodeDeployToECS action")
    if deploy_cfg:
        r.check(deploy_cfg["TaskDefinitionTemplatePath"] in files and deploy_cfg["AppSpecTemplatePath"] in files,
                "the deploy action reads files the build produces")
        r.equal(deploy_cfg["Image1ContainerName"], "IMAGE1_NAME", "image placeholder name")

    print("bash syntax of the buildspec's commands")
    for phase, body in phases.items():
        script = "\n".join(body["commands"])
        proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        r.check(proc.returncode == 0, f"{phase}: bash -n", proc.stderr.strip())
    return r.finish()


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""What `terraform apply` of examples/complete created (against moto), read
back from `terraform show -json`: a summary by resource type, and the values
that matter compared with deploy/contract.json, deploy/ecs/task-definition.json
and deploy/pipeline/appspec.yaml.

Values are read from the state, i.e. as moto returned them. moto leaves out a
few attributes it accepts; those (MOTO_UNRETURNED) are read from the saved
plan instead, i.e. as Terraform sent them, and say so.

Usage: check_state.py STATE.json PLAN.json TFVARS   (exit 1 on any problem)
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import yaml

import deploylib as d


def resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for res in module.get("resources", []):
        if res.get("mode") == "managed":
            yield res
    for child in module.get("child_modules", []):
        yield from resources(child)


def by_address(all_res: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [r for r in all_res if r["address"].split("[")[0].endswith(suffix)]


def one(all_res: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    found = by_address(all_res, suffix)
    if len(found) != 1:
        raise SystemExit(f"expected one {suffix} in the state, found {len(found)}")
    return found[0]["values"]


# (resource address suffix, attribute) that moto accepts but does not return.
MOTO_UNRETURNED = {
    ("module.service.aws_ecs_service.this", "health_check_grace_period_seconds"),
    ("module.pipeline.aws_codedeploy_deployment_group.this", "alarm_configuration"),
}


def main(state_path: str, plan_path: str, tfvars_path: str) -> int:
    state = json.loads(Path(state_path).read_text())
    plan = json.loads(Path(plan_path).read_text())
    all_res = list(resources(state["values"]["root_module"]))
    planned = list(resources(plan["planned_values"]["root_module"]))

    def sent(suffix: str, attr: str) -> object:
        assert (suffix, attr) in MOTO_UNRETURNED
        return one(planned, suffix)[attr]

    types = Counter(r["type"] for r in all_res)
    print(f"applied {len(all_res)} resources of {len(types)} types:")
    for t, n in sorted(types.items()):
        print(f"  {n:3d} {t}")

    c = d.load_contract()
    r = d.Report("applied state")
    tfvars = Path(tfvars_path).read_text()
    redis_on = "enable_redis             = false" not in tfvars

    print("load balancer")
    lb = one(all_res, "module.alb.aws_lb.this")
    r.equal(lb["idle_timeout"], c["alb"]["idle_timeout_seconds"], "ALB idle timeout")
    r.equal(lb["drop_invalid_header_fields"], True, "ALB drops invalid header fields")
    r.equal(lb["access_logs"][0]["enabled"], True, "ALB access logs on")
    listeners = {r_["address"]: r_["values"] for r_ in by_address(all_res, "aws_lb_listener.https") + by_address(all_res, "aws_lb_listener.test")}
    r.check(len(listeners) == 2 and all(l["ssl_policy"] == c["alb"]["ssl_policy"] for l in listeners.values()),
            "HTTPS and test listeners use the contract's TLS policy")
    r.equal(sorted(l["port"] for l in listeners.values()), sorted([c["alb"]["https_port"], c["alb"]["test_listener_port"]]), "listener ports")
    redirect = one(all_res, "aws_lb_listener.http_redirect")
    r.equal(redirect["default_action"][0]["redirect"][0]["protocol"], "HTTPS", "HTTP redirects to HTTPS")
    tgs = by_address(all_res, "module.alb.aws_lb_target_group.this")
    r.equal(len(tgs), 2, "blue and green target groups")
    for tg in tgs:
        v = tg["values"]
        hc = v["health_check"][0]
        r.check(v["target_type"] == "ip" and v["port"] == c["container"]["port"] and hc["path"] == c["target_group"]["health_check"]["path"],
                f"{v['name']}: ip targets on the container port, health check {hc['path']}")
        r.equal(str(v["deregistration_delay"]), str(c["target_group"]["deregistration_delay_seconds"]), f"{v['name']}: deregistration delay")
        r.equal(v["stickiness"][0]["enabled"], False, f"{v['name']}: stickiness off")

    print("ECS")
    td = one(all_res, "module.service.aws_ecs_task_definition.this")
    applied = {x["name"]: x for x in json.loads(td["container_definitions"])}
    file_td = json.loads(d.substitute((d.DEPLOY / "ecs" / "task-definition.json").read_text()))
    r.equal((td["cpu"], td["memory"], td["runtime_platform"][0]["cpu_architecture"]),
            (file_td["cpu"], file_td["memory"], file_td["runtimePlatform"]["cpuArchitecture"]), "task size and architecture match the ECS JSON")
    r.equal(sorted(applied), sorted(x["name"] for x in file_td["containerDefinitions"]), "same containers as the ECS JSON")
    for want in file_td["containerDefinitions"]:
        got = applied.get(want["name"], {})
        for key in ("user", "readonlyRootFilesystem", "stopTimeout", "healthCheck", "essential", "linuxParameters", "dependsOn", "image"):
            if key == "image" and want.get(key) == "<IMAGE1_NAME>":
                continue
            if key in want:
                r.equal(got.get(key), want[key], f"{want['name']}: {key} as in the ECS JSON")
        if want.get("portMappings"):
            r.equal([(p["containerPort"], p.get("name")) for p in got.get("portMappings", [])],
                    [(p["containerPort"], p.get("name")) for p in want["portMappings"]], f"{want['name']}: port mappings")
        r.equal([m["containerPath"] for m in got.get("mountPoints", [])], [m["containerPath"] for m in want.get("mountPoints", [])],
                f"{want['name']}: writable mounts")
        for opt in ("mode", "max-buffer-size"):
            r.equal(got.get("logConfiguration", {}).get("options", {}).get(opt), want["logConfiguration"]["options"][opt],
                    f"{want['name']}: awslogs {opt}")
        genv, wenv = d.env_map(got), d.env_map(want)
        # Values that depend on the deployment (domain, state backend) are
        # compared by name only.
        per_deployment = {"MCPSHIP_ALLOWED_HOSTS", "DATABASE_URL", "MCPSHIP_STATE"}
        for k in sorted(set(wenv) - per_deployment):
            if k == "AOT_CONFIG_CONTENT":
                r.equal(yaml.safe_load(genv.get(k, "")), yaml.safe_load(wenv[k]), f"{want['name']}: collector configuration")
            else:
                r.equal(genv.get(k), wenv[k], f"{want['name']}: {k}")
        gnames = set(genv) | {s["name"] for s in got.get("secrets", [])}
        wnames = set(wenv) | {s["name"] for s in want.get("secrets", [])}
        allowed = set() if redis_on else {"MCPSHIP_STATE", "MCPSHIP_REDIS_URL"}
        r.check(gnames ^ wnames <= allowed, f"{want['name']}: same variables as the ECS JSON",
                f"only in Terraform {sorted(gnames - wnames)}, only in the JSON {sorted(wnames - gnames)}")
    svc = one(all_res, "module.service.aws_ecs_service.this")
    r.equal(svc["deployment_controller"][0]["type"], "CODE_DEPLOY", "service uses the CodeDeploy controller")
    r.equal(svc["network_configuration"][0]["assign_public_ip"], False, "tasks get no public IP")
    r.equal((svc["load_balancer"][0]["container_name"], svc["load_balancer"][0]["container_port"]),
            (c["container"]["name"], c["container"]["port"]), "service load balancer container and port")
    r.equal(sent("module.service.aws_ecs_service.this", "health_check_grace_period_seconds"),
            c["ecs"]["health_check_grace_period_seconds"], "health check grace period (as planned: moto does not return it)")
    ecr = one(all_res, "module.service.aws_ecr_repository.this")
    r.check(ecr["image_tag_mutability"] == "IMMUTABLE" and ecr["image_scanning_configuration"][0]["scan_on_push"], "ECR: immutable tags, scan on push")

    print("release")
    dg = one(all_res, "module.pipeline.aws_codedeploy_deployment_group.this")
    r.equal(sorted(dg["auto_rollback_configuration"][0]["events"]), ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"], "rollback on failure and on alarm")
    alarm_cfg = sent("module.pipeline.aws_codedeploy_deployment_group.this", "alarm_configuration")[0]
    alarm_names = {a["values"]["alarm_name"] for a in all_res if a["type"] == "aws_cloudwatch_metric_alarm"}
    r.check(alarm_cfg["enabled"] and len(alarm_cfg["alarms"]) >= 3 and set(alarm_cfg["alarms"]) <= alarm_names,
            "release stops on alarms that exist (as planned: moto does not return them)", str(alarm_cfg))
    r.equal(dg["blue_green_deployment_config"][0]["terminate_blue_instances_on_deployment_success"][0]["termination_wait_time_in_minutes"],
            c["deployment"]["termination_wait_minutes"], "bake time")
    pair = dg["load_balancer_info"][0]["target_group_pair_info"][0]
    https_arn = one(all_res, "aws_lb_listener.https")["arn"]
    test_arn = one(all_res, "aws_lb_listener.test")["arn"]
    r.equal((pair["prod_traffic_route"][0]["listener_arns"], pair["test_traffic_route"][0]["listener_arns"]),
            ([https_arn], [test_arn]), "production and test routes are the HTTPS and test listeners")
    r.equal(sorted(t["name"] for t in pair["target_group"]), sorted(tg["values"]["name"] for tg in tgs), "the pair is the blue and green target groups")
    hooks = {r_["index"]: r_["values"] for r_ in by_address(all_res, "module.pipeline.aws_lambda_function.hook")}
    appspec = yaml.safe_load((d.DEPLOY / "pipeline" / "appspec.yaml").read_text())
    r.equal({k: v["function_name"] for k, v in hooks.items()}, {list(h)[0]: list(h.values())[0] for h in appspec["Hooks"]},
            "hook functions are the ones the appspec names")
    for event, fn in hooks.items():
        r.check(fn["runtime"] == "provided.al2023" and fn["architectures"] == ["arm64"], f"{event}: provided.al2023 on arm64")
    r.check(hooks.get("BeforeAllowTraffic", {}).get("environment", [{}])[0].get("variables", {}).get("MCPSHIP_SMOKE_URL", "").endswith(
        f":{c['alb']['test_listener_port']}{c['routes']['mcp']}"), "BeforeAllowTraffic smoke-tests the test listener")
    alarms = by_address(all_res, "aws_cloudwatch_metric_alarm.alb_5xx") + by_address(all_res, "aws_cloudwatch_metric_alarm.tool_p99")
    r.check(len(alarms) >= 2, "5XX and per-tool alarms exist")
    r.check(types["aws_cloudwatch_dashboard"] == 1, "dashboard exists")
    return r.finish()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[1], sys.argv[2], sys.argv[3]))

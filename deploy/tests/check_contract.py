#!/usr/bin/env python3
"""deploy/contract.json against everything that must agree with it.

  check_contract.py                 contract relations, ECS JSON, appspec,
                                    Terraform module defaults and telemetry
                                    names, the Dockerfile
  check_contract.py --server BIN    also the server: its defaults
                                    (`BIN config`) and the task definition's
                                    environment as the server reads it
  check_contract.py --server-only --server BIN   only the server part

Exit 1 when anything disagrees.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

import deploylib as d

EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}


def relations(r: d.Report, c: dict[str, Any]) -> None:
    print("contract relations")
    alb, srv, ecs, tg = c["alb"], c["server"], c["ecs"], c["target_group"]
    idle = alb["idle_timeout_seconds"]
    r.check(srv["keep_alive_timeout_seconds"] > idle, "server keep-alive outlives the ALB idle timeout",
            f"{srv['keep_alive_timeout_seconds']} <= {idle}")
    r.check(0 < srv["sse_keep_alive_seconds"] < idle, "SSE keep-alive comes more often than the ALB idle timeout",
            f"{srv['sse_keep_alive_seconds']} vs {idle}")
    r.check(srv["sse_keep_alive_seconds"] < srv["keep_alive_timeout_seconds"], "SSE keep-alive below the server keep-alive")
    r.check(srv["header_read_timeout_seconds"] < srv["keep_alive_timeout_seconds"], "header read timeout below the keep-alive timeout")
    r.check(0 < srv["drain_timeout_seconds"] < ecs["stop_timeout_seconds"] <= ecs["max_stop_timeout_seconds"] == 120,
            "drain < stopTimeout <= 120 s (Fargate)",
            f"drain {srv['drain_timeout_seconds']}, stopTimeout {ecs['stop_timeout_seconds']}, max {ecs['max_stop_timeout_seconds']}")
    r.check(c["deployment"]["termination_wait_minutes"] * 60 >= srv["max_stream_age_seconds"],
            "old tasks outlive the longest stream after a traffic shift (bake >= max stream age)")
    r.check(0 <= tg["deregistration_delay_seconds"] <= 3600, "deregistration delay within the ALB's 0..3600 s")
    hc = tg["health_check"]
    r.check(hc["timeout_seconds"] < hc["interval_seconds"], "ALB health check timeout below its interval")
    r.equal(hc["path"], c["routes"]["ready"], "ALB health check path is the readiness route")
    r.check(hc["path"] != c["routes"]["mcp"], "ALB health check avoids /mcp (Host-checked)")
    r.check(2 <= hc["healthy_threshold"] <= 10 and 2 <= hc["unhealthy_threshold"] <= 10, "health check thresholds within 2..10")
    chc = ecs["container_health_check"]
    r.check(chc["timeout_seconds"] < chc["interval_seconds"], "container health check timeout below its interval")
    r.equal(c["container"]["healthcheck_command"], ["CMD", c["container"]["binary"], "healthcheck"],
            "container health check runs the binary's healthcheck command")
    r.check(1024 <= c["container"]["port"] <= 65535, "container port is unprivileged")
    r.check(c["container"]["user"] not in ("0", "root"), "container user is not root")
    r.check(tg["stickiness_enabled"] is False, "ALB stickiness off (MCP clients keep no cookies)")
    r.check(tg["slow_start_seconds"] == 0 or 30 <= tg["slow_start_seconds"] <= 900, "slow start 0 or 30..900 s")
    r.equal(c["routes"]["health_body"], {"status": "healthy"}, "health body is the one existing pipelines assert")
    for key, m in c["telemetry"]["metrics"].items():
        r.check(m["unit"] in EMF_UNITS, f"EMF unit of {m['name']} is a CloudWatch unit", m["unit"])
    r.equal(c["telemetry"]["dimensions"], ["Service", "Tool"], "EMF dimension set")


def ecs_json(r: d.Report, c: dict[str, Any]) -> None:
    print("deploy/ecs/*.json")
    td = d.task_definition()
    name = c["container"]["name"]
    app = d.container(td, name)
    env = d.env_map(app)
    srv = c["server"]
    r.equal(td["cpu"], str(c["container"]["task_cpu"]), "task cpu")
    r.equal(td["memory"], str(c["container"]["task_memory"]), "task memory")
    r.equal(td["runtimePlatform"]["cpuArchitecture"], c["container"]["cpu_architecture"], "task architecture")
    r.equal(app["portMappings"][0]["containerPort"], c["container"]["port"], "container port")
    r.equal(app["portMappings"][0]["name"], c["container"]["port_name"], "port mapping name")
    r.equal(app["user"], c["container"]["user"], "container user")
    r.check(all(x.get("readonlyRootFilesystem") is True for x in td["containerDefinitions"]), "every container has a read-only root filesystem")
    r.check(all(x.get("privileged") is not True for x in td["containerDefinitions"]), "no privileged container")
    r.equal(app["stopTimeout"], c["ecs"]["stop_timeout_seconds"], "stopTimeout")
    r.equal(app["linuxParameters"].get("initProcessEnabled"), True, "initProcessEnabled")
    chc = c["ecs"]["container_health_check"]
    r.equal(app["healthCheck"], {
        "command": c["container"]["healthcheck_command"], "interval": chc["interval_seconds"],
        "timeout": chc["timeout_seconds"], "retries": chc["retries"], "startPeriod": chc["start_period_seconds"],
    }, "container health check")
    r.equal([m["containerPath"] for m in app.get("mountPoints", [])], [c["container"]["writable_path"]], "the only writable mount")
    r.equal(env.get("PORT"), str(c["container"]["port"]), "PORT")
    r.equal(env.get("MCPSHIP_KEEP_ALIVE_TIMEOUT"), f"{srv['keep_alive_timeout_seconds']}s", "MCPSHIP_KEEP_ALIVE_TIMEOUT")
    r.equal(env.get("MCPSHIP_SSE_KEEP_ALIVE"), f"{srv['sse_keep_alive_seconds']}s", "MCPSHIP_SSE_KEEP_ALIVE")
    r.equal(env.get("MCPSHIP_DRAIN_TIMEOUT"), f"{srv['drain_timeout_seconds']}s", "MCPSHIP_DRAIN_TIMEOUT")
    r.equal(env.get("MCPSHIP_MAX_STREAM_AGE"), f"{srv['max_stream_age_seconds']}s", "MCPSHIP_MAX_STREAM_AGE")
    r.equal(env.get("MCPSHIP_EMF_NAMESPACE"), c["telemetry"]["emf_namespace"], "MCPSHIP_EMF_NAMESPACE")
    r.equal(env.get("MCPSHIP_SERVICE_NAME"), c["telemetry"]["service_name"], "MCPSHIP_SERVICE_NAME")
    r.check(all(x["logConfiguration"]["options"].get("mode") == "non-blocking" for x in td["containerDefinitions"]), "awslogs non-blocking everywhere")
    secrets = {s["name"] for s in app.get("secrets", [])}
    r.check({"DATABASE_URL", "MCPSHIP_REDIS_URL"} <= secrets and not ({"DATABASE_URL", "MCPSHIP_REDIS_URL"} & set(env)),
            "DATABASE_URL and MCPSHIP_REDIS_URL come from secrets, never plain environment")
    collector = [x for x in td["containerDefinitions"] if x["name"] != name]
    r.check(len(collector) == 1 and "aws-otel-collector" in collector[0]["image"] and collector[0]["essential"] is False,
            "one non-essential ADOT collector sidecar")
    r.check({"containerName": collector[0]["name"], "condition": "START"} in app.get("dependsOn", []) if collector else False,
            "server starts after the collector")

    for path in sorted((d.DEPLOY / "ecs").glob("service-definition*.json")):
        svc = json.loads(path.read_text())
        lb = svc["loadBalancers"][0]
        r.equal((lb["containerName"], lb["containerPort"]), (name, c["container"]["port"]), f"{path.name}: load balancer container and port")
        r.equal(svc["healthCheckGracePeriodSeconds"], c["ecs"]["health_check_grace_period_seconds"], f"{path.name}: health check grace period")
        r.equal(svc["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"], "DISABLED", f"{path.name}: no public IP")
        sc = svc.get("serviceConnectConfiguration")
        if sc:
            for s in sc["services"]:
                r.equal(s["portName"], c["container"]["port_name"], f"{path.name}: Service Connect port name")
                r.equal(s["timeout"]["idleTimeoutSeconds"], c["alb"]["idle_timeout_seconds"], f"{path.name}: Service Connect idle timeout")
                r.equal(s["timeout"]["perRequestTimeoutSeconds"], 0, f"{path.name}: no per-request timeout (streams)")
    r.equal(json.loads((d.DEPLOY / "ecs" / "service-definition.json").read_text())["deploymentController"]["type"],
            "CODE_DEPLOY", "service-definition.json: CodeDeploy blue/green controller")


def appspec(r: d.Report, c: dict[str, Any]) -> None:
    print("deploy/pipeline/appspec.yaml")
    spec = yaml.safe_load((d.DEPLOY / "pipeline" / "appspec.yaml").read_text())
    lbi = spec["Resources"][0]["TargetService"]["Properties"]["LoadBalancerInfo"]
    r.equal(lbi["ContainerName"], c["container"]["name"], "appspec ContainerName")
    r.equal(lbi["ContainerPort"], c["container"]["port"], "appspec ContainerPort")


# Terraform module variable -> contract value. Each module works on its own,
# so its defaults must already be the contract's.
def terraform_defaults(r: d.Report, c: dict[str, Any]) -> None:
    print("Terraform module defaults")
    tg, srv, ecs, con, alb, tel = c["target_group"], c["server"], c["ecs"], c["container"], c["alb"], c["telemetry"]
    chc = ecs["container_health_check"]
    expected = {
        "alb": {
            "idle_timeout": alb["idle_timeout_seconds"], "ssl_policy": alb["ssl_policy"],
            "https_port": alb["https_port"], "test_listener_port": alb["test_listener_port"],
            "container_port": con["port"], "deregistration_delay": tg["deregistration_delay_seconds"],
            "slow_start": tg["slow_start_seconds"], "stickiness_enabled": tg["stickiness_enabled"],
            "health_check": tg["health_check"],
        },
        "service": {
            "container_name": con["name"], "container_port": con["port"], "container_port_name": con["port_name"],
            "container_user": con["user"], "writable_path": con["writable_path"], "cpu_architecture": con["cpu_architecture"],
            "task_cpu": con["task_cpu"], "task_memory": con["task_memory"], "stop_timeout": ecs["stop_timeout_seconds"],
            "health_check_grace_period": ecs["health_check_grace_period_seconds"],
            "container_health_check": {"command": con["healthcheck_command"], "interval_seconds": chc["interval_seconds"],
                                       "timeout_seconds": chc["timeout_seconds"], "retries": chc["retries"],
                                       "start_period_seconds": chc["start_period_seconds"]},
            "load_balancer_idle_timeout": alb["idle_timeout_seconds"],
            "keep_alive_timeout_seconds": srv["keep_alive_timeout_seconds"], "sse_keep_alive_seconds": srv["sse_keep_alive_seconds"],
            "drain_timeout_seconds": srv["drain_timeout_seconds"], "max_stream_age_seconds": srv["max_stream_age_seconds"],
            "emf_namespace": tel["emf_namespace"], "service_dimension": tel["service_name"],
        },
        "pipeline": {
            "max_stream_age_seconds": srv["max_stream_age_seconds"], "termination_wait_minutes": c["deployment"]["termination_wait_minutes"],
            "deployment_config_name": c["deployment"]["deployment_config"], "test_listener_port": alb["test_listener_port"],
        },
        "observability": {"emf_namespace": tel["emf_namespace"], "service_dimension": tel["service_name"]},
    }
    for module, values in expected.items():
        defaults = d.variable_defaults(d.TERRAFORM / "modules" / module)
        for var, want in values.items():
            r.equal(defaults.get(var), want, f"modules/{module} var.{var} default")

    print("Terraform telemetry names (modules/observability locals)")
    t = d.locals_of(d.TERRAFORM / "modules" / "observability" / "main.tf")["telemetry"]
    r.equal(t["namespace"], "${var.emf_namespace}", "namespace comes from var.emf_namespace")
    r.equal(t["service"], "${var.service_dimension}", "Service dimension comes from var.service_dimension")
    r.equal(t["dimensions"], tel["dimensions"], "dimension set")
    r.equal(t["metrics"], {k: m["name"] for k, m in tel["metrics"].items()}, "metric names")
    r.equal(t["units"], {k: m["unit"] for k, m in tel["metrics"].items()}, "metric units")
    r.equal(sorted(t["events"].values()), sorted(tel["tool_events"]), "tool event names")
    r.equal(sorted(t["log_fields"].values()), sorted(tel["tool_log_fields"]), "tool log fields")
    r.equal(sorted(t["access_log_fields"].values()), sorted(tel["access_log_fields"]), "access log fields")
    # Every metric and field the module's text uses must be one of those names.
    text = (d.TERRAFORM / "modules" / "observability" / "main.tf").read_text()
    used_metrics = set(re.findall(r'"(Tool[A-Z][A-Za-z]+)"', text))
    r.check(used_metrics <= {m["name"] for m in tel["metrics"].values()}, "no other per-tool metric names in the module", str(used_metrics))

    print("Terraform example reads the contract")
    main = (d.TERRAFORM / "examples" / "complete" / "main.tf").read_text()
    m = re.search(r'jsondecode\(file\("\$\{path\.module\}/([^"]+)"\)\)', main)
    r.check(bool(m) and (d.TERRAFORM / "examples" / "complete" / m.group(1)).resolve() == d.CONTRACT_PATH,
            "examples/complete decodes deploy/contract.json")


def dockerfile(r: d.Report, c: dict[str, Any]) -> None:
    path = d.DEPLOY / "docker" / "Dockerfile"
    if not path.exists():
        print("deploy/docker/Dockerfile: not there, skipped")
        return
    print("deploy/docker/Dockerfile (final stage)")
    lines = re.sub(r"\\\n", " ", path.read_text()).splitlines()
    final: list[str] = []
    for line in lines:
        s = line.strip()
        if s.upper().startswith("FROM "):
            final = []
        if s and not s.startswith("#"):
            final.append(s)

    def directive(name: str) -> list[str]:
        return [l[len(name) + 1:].strip() for l in final if l.upper().startswith(name + " ")]

    exposes = " ".join(directive("EXPOSE")).split()
    r.equal([e.split("/")[0] for e in exposes], [str(c["container"]["port"])], "EXPOSE")
    users = directive("USER")
    r.check(bool(users) and users[-1].split(":")[0] == c["container"]["user"], "USER is the contract's user", str(users))
    env_text = " ".join(directive("ENV"))
    r.check(re.search(rf"\bPORT={c['container']['port']}\b", env_text) is not None, "ENV PORT is the contract's port", env_text)
    volumes = " ".join(directive("VOLUME"))
    r.check(f'"{c["container"]["writable_path"]}"' in volumes or c["container"]["writable_path"] in volumes.split(),
            "VOLUME is the task's writable path", volumes)
    hc = " ".join(directive("HEALTHCHECK"))
    cmd = re.search(r"CMD\s+(\[.*\])", hc)
    r.check(bool(cmd) and json.loads(cmd.group(1)) == c["container"]["healthcheck_command"][1:],
            "HEALTHCHECK runs the same command as the task's health check", hc)
    chc = c["ecs"]["container_health_check"]
    for flag, key in (("interval", "interval_seconds"), ("timeout", "timeout_seconds"),
                      ("start-period", "start_period_seconds"), ("retries", "retries")):
        m = re.search(rf"--{flag}=(\S+)", hc)
        got = (d.seconds(m.group(1)) if flag != "retries" else int(m.group(1))) if m else None
        r.equal(got, chc[key], f"HEALTHCHECK --{flag}")


def find_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def run_config(binary: str, env: dict[str, str]) -> tuple[int, Any, str]:
    proc = subprocess.run([binary, "config"], env=env, capture_output=True, text=True, timeout=60)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        out = None
    return proc.returncode, out, proc.stderr


def server(r: d.Report, c: dict[str, Any], binary: str) -> None:
    # A clean environment: only what the server would see by default.
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    print(f"server defaults ({binary} config)")
    rc, cfg, err = run_config(binary, base)
    if not r.check(rc == 0 and isinstance(cfg, dict), "`mcpship config` prints the effective configuration as JSON", err.strip()[:300]):
        return
    srv = c["server"]
    r.equal(find_key(cfg, "port"), c["container"]["port"], "default PORT")
    for key, want in (("keep_alive_timeout", srv["keep_alive_timeout_seconds"]), ("sse_keep_alive", srv["sse_keep_alive_seconds"]),
                      ("drain_timeout", srv["drain_timeout_seconds"]), ("header_read_timeout", srv["header_read_timeout_seconds"])):
        got = find_key(cfg, key)
        r.check(got is not None and d.seconds(got) == want, f"default {key} is the contract's {want}s", f"server says {got!r}")
    # Settings the deployment sets but older server builds may not have yet:
    # compared as soon as the server reports them.
    for key, want, unit in (("max_stream_age", srv["max_stream_age_seconds"], "s"),
                            ("emf_namespace", c["telemetry"]["emf_namespace"], ""),
                            ("service_name", c["telemetry"]["service_name"], "")):
        got = find_key(cfg, key)
        if got is None:
            r.note(f"the server reports no {key} setting yet; the task sets it, compared once the server has it")
        elif unit == "s":
            r.check(d.seconds(got) == want, f"default {key} is the contract's {want}s", f"server says {got!r}")
        else:
            r.equal(got, want, f"default {key}")

    print("the task definition's environment, as the server reads it")
    app = d.container(d.task_definition(), c["container"]["name"])
    env = dict(base)
    env.update({k: d.substitute(v) for k, v in d.env_map(app).items()})
    # Secrets arrive from Secrets Manager/SSM at run time; stand-ins here.
    env["DATABASE_URL"] = "postgres://mcpship:db-password-standin@db.invalid/mcpship"
    env["MCPSHIP_REDIS_URL"] = "rediss://:redis-token-standin@cache.invalid:6379"
    rc, cfg2, err = run_config(binary, env)
    if not r.check(rc == 0 and isinstance(cfg2, dict), "the server accepts the task's environment", err.strip()[:300]):
        return
    r.equal(find_key(cfg2, "port"), c["container"]["port"], "PORT as read")
    host = find_key(cfg2, "host")
    r.check(host in ("0.0.0.0", "::"), "HOST as read: all interfaces", repr(host))
    for key, want in (("keep_alive_timeout", srv["keep_alive_timeout_seconds"]), ("sse_keep_alive", srv["sse_keep_alive_seconds"]),
                      ("drain_timeout", srv["drain_timeout_seconds"])):
        got = find_key(cfg2, key)
        r.check(got is not None and d.seconds(got) == want, f"{key} as read is {want}s", f"server says {got!r}")
    hosts = find_key(cfg2, "allowed_hosts")
    r.equal(hosts, [d.SAMPLE_VALUES["DOMAIN_NAME"]], "MCPSHIP_ALLOWED_HOSTS as read")
    printed = json.dumps(cfg2)
    r.check("db-password-standin" not in printed and "redis-token-standin" not in printed,
            "`mcpship config` redacts the secrets the task injects")
    # Variables the task sets that this server build does not read are
    # reported, not failed: they belong to settings still being added.
    sources = "\n".join(p.read_text() for p in (d.ROOT / "crates").rglob("*.rs"))
    unknown = sorted(k for k in list(d.env_map(app)) + [s["name"] for s in app.get("secrets", [])]
                     if k.startswith("MCPSHIP_") and f'"{k}"' not in sources)
    if unknown:
        r.note(f"task variables this server build does not read yet: {', '.join(unknown)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", metavar="BIN", help="the mcpship binary to compare with")
    ap.add_argument("--server-only", action="store_true", help="only the checks that need --server")
    args = ap.parse_args()
    if args.server_only and not args.server:
        ap.error("--server-only needs --server BIN")
    c = d.load_contract()
    r = d.Report("contract and server" if args.server else "contract")
    if not args.server_only:
        relations(r, c)
        ecs_json(r, c)
        appspec(r, c)
        terraform_defaults(r, c)
        dockerfile(r, c)
    if args.server:
        server(r, c, args.server)
    return r.finish()


if __name__ == "__main__":
    raise SystemExit(main())

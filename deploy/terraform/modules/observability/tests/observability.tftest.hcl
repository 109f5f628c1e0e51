# Alarms, dashboard and queries use the telemetry names of
# deploy/contract.json, against a mocked provider.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name                      = "mcpship"
  log_group_name            = "/ecs/mcpship"
  alb_arn_suffix            = "app/mcpship/0123456789abcdef"
  target_group_arn_suffixes = { blue = "targetgroup/mcpship-blue/0123456789abcdef", green = "targetgroup/mcpship-green/0123456789abcdef" }
  cluster_name              = "mcpship"
  service_name              = "mcpship"
}

run "alarms_dashboard_and_queries" {
  command = apply

  assert {
    condition = (
      output.telemetry.namespace == jsondecode(file("../../../contract.json")).telemetry.emf_namespace &&
      output.telemetry.service == jsondecode(file("../../../contract.json")).telemetry.service_name &&
      output.telemetry.dimensions == jsondecode(file("../../../contract.json")).telemetry.dimensions &&
      output.telemetry.metrics == { for k, m in jsondecode(file("../../../contract.json")).telemetry.metrics : k => m.name } &&
      output.telemetry.units == { for k, m in jsondecode(file("../../../contract.json")).telemetry.metrics : k => m.unit } &&
      toset(values(output.telemetry.events)) == toset(jsondecode(file("../../../contract.json")).telemetry.tool_events) &&
      toset(values(output.telemetry.log_fields)) == toset(jsondecode(file("../../../contract.json")).telemetry.tool_log_fields) &&
      toset(values(output.telemetry.access_log_fields)) == toset(jsondecode(file("../../../contract.json")).telemetry.access_log_fields)
    )
    error_message = "Telemetry names in the observability module must be the contract's."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.alb_p99.extended_statistic == "p99" && aws_cloudwatch_metric_alarm.alb_p99.metric_name == "TargetResponseTime"
    error_message = "p99 TargetResponseTime alarm missing."
  }

  assert {
    condition     = length([for q in aws_cloudwatch_metric_alarm.alb_5xx.metric_query : q if try(q.metric[0].metric_name, "") == "HTTPCode_Target_5XX_Count"]) == 1
    error_message = "The 5XX alarm must count the tasks' 5XX answers."
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.unhealthy_hosts)) == toset(["blue", "green"])
    error_message = "Both target groups need an UnHealthyHostCount alarm."
  }

  assert {
    condition = alltrue([for t, a in aws_cloudwatch_metric_alarm.tool_p99 :
    a.namespace == "MCPShip" && a.metric_name == "ToolDuration" && a.dimensions == tomap({ Service = "mcpship", Tool = t }) && a.unit == "Milliseconds"])
    error_message = "Per-tool p99 alarms must read ToolDuration with dimensions Service and Tool."
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.tool_error_rate)) == toset(["search_documents", "get_document"])
    error_message = "Each alarmed tool needs an error-rate alarm."
  }

  assert {
    condition     = length(output.deployment_alarm_names) == 4 && contains(output.deployment_alarm_names, "mcpship-alb-5xx-rate")
    error_message = "Releases must stop on the 5XX, latency and tool error-rate alarms."
  }

  assert {
    condition = alltrue([for w in ["RequestCount", "TargetResponseTime", "CPUUtilization", "MemoryUtilization", "ToolDuration", "ToolErrors", "ToolCalls", "UnHealthyHostCount"] :
    strcontains(aws_cloudwatch_dashboard.this.dashboard_body, w)])
    error_message = "The dashboard must show ALB requests/latency, ECS CPU/memory, health and per-tool metrics."
  }

  assert {
    condition     = length(aws_cloudwatch_query_definition.this) == 5 && strcontains(aws_cloudwatch_query_definition.this["tool-latency"].query_string, "pct(duration_ms, 99) as p99_ms by tool")
    error_message = "Saved queries missing, or the tool latency query does not compute p99 by tool."
  }

  assert {
    condition     = alltrue([for a in concat([aws_cloudwatch_metric_alarm.alb_5xx, aws_cloudwatch_metric_alarm.alb_p99], values(aws_cloudwatch_metric_alarm.tool_error_rate)) : a.alarm_actions == toset([aws_sns_topic.alarms.arn])])
    error_message = "Alarms must notify the alarm topic."
  }
}

run "reserved_namespace_is_refused" {
  command = plan
  variables {
    emf_namespace = "AWS/ECS"
  }
  expect_failures = [var.emf_namespace]
}

# Alarms, a dashboard, saved Logs Insights queries and the alarm topic.
#
# Every metric name, dimension and log field used below comes from
# local.telemetry, which must match what the server emits
# (crates/mcpship/src/events.rs and the telemetry code; checked by
# scripts/check-deploy against deploy/contract.json and a running server).

data "aws_region" "current" {}

locals {
  telemetry = {
    namespace  = var.emf_namespace
    service    = var.service_dimension
    dimensions = ["Service", "Tool"]
    metrics = {
      calls    = "ToolCalls"    # Count
      errors   = "ToolErrors"   # Count
      duration = "ToolDuration" # Milliseconds
    }
    units = {
      calls    = "Count"
      errors   = "Count"
      duration = "Milliseconds"
    }
    # The event name is the log line's `message`.
    events = {
      invoked   = "tool.invoked"
      succeeded = "tool.succeeded"
      failed    = "tool.failed"
    }
    log_fields = {
      event       = "message"
      tool        = "tool"
      duration    = "duration_ms"
      session     = "session_id"
      request     = "request_id"
      trace       = "trace_id"
      error_class = "error_class"
    }
    access_log_fields = {
      method     = "http.method"
      path       = "http.path"
      status     = "http.status"
      duration   = "duration_ms"
      mcp_method = "mcp.method"
      mcp_name   = "mcp.name"
    }
  }

  m  = local.telemetry.metrics
  f  = local.telemetry.log_fields
  a  = local.telemetry.access_log_fields
  ev = local.telemetry.events

  alarm_actions = [aws_sns_topic.alarms.arn]

  tool_dimensions = { for t in var.alarmed_tools : t => { Service = local.telemetry.service, Tool = t } }

  queries = {
    "tool-latency"  = <<-QUERY
      fields @timestamp, ${local.f.tool}, ${local.f.duration}
      | filter ${local.f.event} in ["${local.ev.succeeded}", "${local.ev.failed}"]
      | stats count(*) as calls, avg(${local.f.duration}) as avg_ms, pct(${local.f.duration}, 99) as p99_ms by ${local.f.tool}
      | sort p99_ms desc
    QUERY
    "tool-errors"   = <<-QUERY
      fields @timestamp, ${local.f.tool}, ${local.f.error_class}, ${local.f.request}, ${local.f.session}, ${local.f.trace}
      | filter ${local.f.event} = "${local.ev.failed}"
      | stats count(*) as failures by ${local.f.tool}, ${local.f.error_class}
      | sort failures desc
    QUERY
    "slow-requests" = <<-QUERY
      fields @timestamp, ${local.a.method}, ${local.a.path}, ${local.a.status}, ${local.a.duration}, ${local.a.mcp_method}, ${local.a.mcp_name}, ${local.f.request}
      | filter ispresent(${local.a.status}) and ${local.a.duration} > 1000
      | sort ${local.a.duration} desc
      | limit 100
    QUERY
    "http-errors"   = <<-QUERY
      fields @timestamp, ${local.a.status}, ${local.a.mcp_method}, ${local.a.mcp_name}
      | filter ${local.a.status} >= 500
      | stats count(*) as errors by bin(5m), ${local.a.status}, ${local.a.mcp_method}, ${local.a.mcp_name}
    QUERY
    "request-trail" = <<-QUERY
      fields @timestamp, level, ${local.f.event}, ${local.f.tool}, ${local.a.status}, ${local.f.duration}, ${local.f.trace}
      | filter ${local.f.request} = "PUT-A-REQUEST-ID-HERE"
      | sort @timestamp asc
    QUERY
  }
}

# --- alarm topic --------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email != null ? 1 : 0
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- load balancer alarms -------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.name}-alb-5xx-rate"
  alarm_description   = "More than ${var.alb_5xx_rate_percent}% of requests answered 5XX (by the ALB or the tasks) for 3 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alb_5xx_rate_percent
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    label       = "5XX %"
    expression  = "IF(requests >= ${var.min_requests_per_minute}, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = {
      requests  = "RequestCount"
      target5xx = "HTTPCode_Target_5XX_Count"
      elb5xx    = "HTTPCode_ELB_5XX_Count"
    }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = { LoadBalancer = var.alb_arn_suffix }
        period      = 60
        stat        = "Sum"
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "alb_p99" {
  alarm_name          = "${var.name}-alb-p99-response-time"
  alarm_description   = "p99 time to the response head above ${var.p99_response_time_seconds}s for 3 minutes (streams count until their first byte)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.p99_response_time_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  for_each = var.target_group_arn_suffixes

  alarm_name          = "${var.name}-unhealthy-hosts-${each.key}"
  alarm_description   = "Tasks in the ${each.key} target group failed the /ready health check for 3 minutes."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# --- per-tool alarms (EMF metrics) ------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "tool_error_rate" {
  for_each = local.tool_dimensions

  alarm_name          = "${var.name}-tool-${each.key}-error-rate"
  alarm_description   = "Tool ${each.key}: more than ${var.tool_error_rate_percent}% of calls failed for 3 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.tool_error_rate_percent
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    label       = "${each.key} error %"
    expression  = "IF(calls >= ${var.min_requests_per_minute}, 100 * FILL(errors, 0) / calls, 0)"
    return_data = true
  }

  metric_query {
    id = "calls"
    metric {
      namespace   = local.telemetry.namespace
      metric_name = local.m.calls
      dimensions  = each.value
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = local.telemetry.namespace
      metric_name = local.m.errors
      dimensions  = each.value
      period      = 60
      stat        = "Sum"
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "tool_p99" {
  for_each = local.tool_dimensions

  alarm_name          = "${var.name}-tool-${each.key}-p99"
  alarm_description   = "Tool ${each.key}: p99 duration above ${var.tool_p99_ms} ms for 3 minutes."
  namespace           = local.telemetry.namespace
  metric_name         = local.m.duration
  dimensions          = each.value
  extended_statistic  = "p99"
  unit                = local.telemetry.units.duration
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.tool_p99_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# --- dashboard ----------------------------------------------------------------------------

locals {
  region = data.aws_region.current.name
  lb     = var.alb_arn_suffix
  search = "{${local.telemetry.namespace},${join(",", local.telemetry.dimensions)}} Service=\"${local.telemetry.service}\""

  widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "ALB requests and 5XX"
        region = local.region
        stat   = "Sum"
        period = 60
        metrics = [
          ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.lb, { label = "requests" }],
          [".", "HTTPCode_Target_5XX_Count", ".", ".", { label = "target 5XX", yAxis = "right" }],
          [".", "HTTPCode_ELB_5XX_Count", ".", ".", { label = "ALB 5XX", yAxis = "right" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "ALB response time (to response head)"
        region = local.region
        period = 60
        metrics = [
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.lb, { stat = "p50", label = "p50" }],
          ["...", { stat = "p99", label = "p99" }],
        ]
        yAxis = { left = { label = "seconds", showUnits = false } }
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title  = "ECS CPU and memory (%)"
        region = local.region
        stat   = "Average"
        period = 60
        metrics = [
          ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.service_name, { label = "CPU" }],
          [".", "MemoryUtilization", ".", ".", ".", ".", { label = "memory" }],
        ]
        yAxis = { left = { min = 0, max = 100 } }
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title  = "Healthy and unhealthy tasks (blue, green)"
        region = local.region
        stat   = "Maximum"
        period = 60
        metrics = flatten([for color, tg in var.target_group_arn_suffixes : [
          ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", tg, "LoadBalancer", local.lb, { label = "${color} healthy" }],
          [".", "UnHealthyHostCount", ".", ".", ".", ".", { label = "${color} unhealthy" }],
        ]])
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 12, height = 6
      properties = {
        title  = "Tool p99 duration (ms)"
        region = local.region
        period = 60
        metrics = [
          [{ expression = "SEARCH('${local.search} MetricName=\"${local.m.duration}\"', 'p99', 60)", id = "p99", label = "" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 12, width = 12, height = 6
      properties = {
        title  = "Tool calls and errors per minute"
        region = local.region
        period = 60
        metrics = [
          [{ expression = "SEARCH('${local.search} MetricName=\"${local.m.calls}\"', 'Sum', 60)", id = "calls", label = "calls" }],
          [{ expression = "SEARCH('${local.search} MetricName=\"${local.m.errors}\"', 'Sum', 60)", id = "errors", label = "errors", yAxis = "right" }],
        ]
      }
    },
    {
      type = "log", x = 0, y = 18, width = 24, height = 6
      properties = {
        title  = "Tool latency from logs (last period)"
        region = local.region
        query  = "SOURCE '${var.log_group_name}' | ${replace(trimspace(local.queries["tool-latency"]), "\n", " ")}"
        view   = "table"
      }
    },
    {
      type = "alarm", x = 0, y = 24, width = 24, height = 4
      properties = {
        title = "Alarms"
        alarms = concat(
          [aws_cloudwatch_metric_alarm.alb_5xx.arn, aws_cloudwatch_metric_alarm.alb_p99.arn],
          [for a in aws_cloudwatch_metric_alarm.unhealthy_hosts : a.arn],
          [for a in aws_cloudwatch_metric_alarm.tool_error_rate : a.arn],
          [for a in aws_cloudwatch_metric_alarm.tool_p99 : a.arn],
        )
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.widgets })
}

# --- saved Logs Insights queries ------------------------------------------------------------

resource "aws_cloudwatch_query_definition" "this" {
  for_each = var.enable_query_definitions ? local.queries : {}

  name            = "${var.name}/${each.key}"
  log_group_names = [var.log_group_name]
  query_string    = each.value
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "deployment_alarm_names" {
  description = "Alarms that stop a release and roll it back (CodeDeploy alarm configuration): 5XX rate, p99 response time, per-tool error rates."
  value = concat(
    [aws_cloudwatch_metric_alarm.alb_5xx.alarm_name, aws_cloudwatch_metric_alarm.alb_p99.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.tool_error_rate : a.alarm_name],
  )
}

output "alarm_names" {
  description = "Every alarm of the service."
  value = concat(
    [aws_cloudwatch_metric_alarm.alb_5xx.alarm_name, aws_cloudwatch_metric_alarm.alb_p99.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.unhealthy_hosts : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.tool_error_rate : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.tool_p99 : a.alarm_name],
  )
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "query_names" {
  description = "Saved Logs Insights queries."
  value       = [for k in keys(local.queries) : "${var.name}/${k}"]
}

output "queries" {
  description = "Logs Insights query text by name."
  value       = local.queries
}

output "telemetry" {
  description = "Metric names, dimensions and log fields the alarms, dashboard and queries rely on."
  value       = local.telemetry
}

output "url" {
  description = "MCP endpoint."
  value       = module.alb.url
}

output "alb_dns_name" {
  description = "Load balancer DNS name (point your DNS here if Route 53 is not used)."
  value       = module.alb.dns_name
}

output "repository_url" {
  description = "Push images here (docker buildx ... -t <repository_url>:<tag> --push)."
  value       = module.service.repository_url
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.service.cluster_name
}

output "service_name" {
  description = "ECS service."
  value       = module.service.service_name
}

output "task_family" {
  description = "Task definition family."
  value       = module.service.task_family
}

output "log_group_name" {
  description = "Task logs."
  value       = module.service.log_group_name
}

output "pipeline_name" {
  description = "Release pipeline."
  value       = module.pipeline.pipeline_name
}

output "codedeploy_app_name" {
  description = "CodeDeploy application."
  value       = module.pipeline.codedeploy_app_name
}

output "deployment_group_name" {
  description = "CodeDeploy deployment group."
  value       = module.pipeline.deployment_group_name
}

output "hook_function_names" {
  description = "Deployment hook functions by lifecycle event."
  value       = module.pipeline.hook_function_names
}

output "source_bucket" {
  description = "Upload the repository zip here when pipeline_source_type = S3."
  value       = module.pipeline.source_bucket
}

output "connection_arn" {
  description = "Source connection; approve it once in the console (Developer Tools > Connections)."
  value       = module.pipeline.connection_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.observability.dashboard_name
}

output "alarm_topic_arn" {
  description = "Alarm notifications."
  value       = module.observability.alarm_topic_arn
}

output "alarm_names" {
  description = "Every alarm."
  value       = module.observability.alarm_names
}

output "name_servers" {
  description = "Name servers of the created hosted zone (create_hosted_zone = true): delegate to them from the parent zone."
  value       = var.create_hosted_zone ? aws_route53_zone.this[0].name_servers : null
}

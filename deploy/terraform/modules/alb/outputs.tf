output "arn" {
  description = "Load balancer ARN."
  value       = aws_lb.this.arn
}

output "arn_suffix" {
  description = "Load balancer ARN suffix (the LoadBalancer dimension of AWS/ApplicationELB metrics)."
  value       = aws_lb.this.arn_suffix
}

output "dns_name" {
  description = "Load balancer DNS name."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Hosted zone of the load balancer's DNS name (for alias records)."
  value       = aws_lb.this.zone_id
}

output "security_group_id" {
  description = "Security group of the load balancer; tasks accept traffic only from it."
  value       = aws_security_group.alb.id
}

output "https_listener_arn" {
  description = "Production HTTPS listener."
  value       = aws_lb_listener.https.arn
}

output "test_listener_arn" {
  description = "Test listener CodeDeploy points at the replacement tasks."
  value       = aws_lb_listener.test.arn
}

output "http_listener_arn" {
  description = "HTTP listener (redirects to HTTPS)."
  value       = aws_lb_listener.http_redirect.arn
}

output "target_group_arns" {
  description = "Target group ARNs by color (blue, green)."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn }
}

output "target_group_names" {
  description = "Target group names by color (blue, green)."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.name }
}

output "target_group_arn_suffixes" {
  description = "Target group ARN suffixes by color (the TargetGroup dimension of ALB metrics)."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn_suffix }
}

output "certificate_arn" {
  description = "Certificate of the HTTPS listeners."
  value       = local.certificate_arn
}

output "url" {
  description = "Public MCP endpoint."
  value       = "https://${var.domain_name}/mcp"
}

output "test_url" {
  description = "MCP endpoint on the test listener (the replacement tasks during a release)."
  value       = "https://${var.domain_name}:${var.test_listener_port}/mcp"
}

output "access_logs_bucket" {
  description = "Bucket holding the access logs."
  value       = aws_s3_bucket.access_logs.id
}

output "url_secret_arn" {
  description = "Secrets Manager secret holding MCPSHIP_REDIS_URL."
  value       = aws_secretsmanager_secret.url.arn
}

output "security_group_id" {
  description = "Security group of the cache (tasks need egress to it)."
  value       = aws_security_group.this.id
}

output "port" {
  description = "Port of the cache."
  value       = var.port
}

output "primary_endpoint_address" {
  description = "Primary endpoint host name."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

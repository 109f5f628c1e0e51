# Shared state for many replicas (MCPSHIP_STATE=redis): legacy session data,
# stream event logs for resumption, listen fan-out, rate-limit counters and
# the MRTR key ring. TLS in transit, encrypted at rest, reachable only from
# the tasks' security group. The connection URL is stored in Secrets Manager
# and injected into the task as MCPSHIP_REDIS_URL.

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name}-state"
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-state"
  description = "Shared state cache: only the tasks connect"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-state" })
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  count = length(var.client_security_group_ids) # ids may be known only after apply

  security_group_id            = aws_security_group.this.id
  description                  = "Cache clients"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = var.client_security_group_ids[count.index]
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV_AWS_31:The AUTH token is optional (var.auth_token); the cache is reachable only from the tasks' security group and traffic is TLS.
  replication_group_id       = "${var.name}-state"
  description                = "${var.name} shared state"
  engine                     = var.engine
  engine_version             = var.engine_version
  node_type                  = var.node_type
  port                       = var.port
  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = var.auth_token
  snapshot_retention_limit   = var.snapshot_retention_days
  auto_minor_version_upgrade = true
  apply_immediately          = false
  tags                       = var.tags
}

locals {
  userinfo = var.auth_token != null ? ":${urlencode(var.auth_token)}@" : ""
  url      = "rediss://${local.userinfo}${aws_elasticache_replication_group.this.primary_endpoint_address}:${var.port}"
}

resource "aws_secretsmanager_secret" "url" {
  #checkov:skip=CKV2_AWS_57:The URL changes only when the cache is replaced; Terraform rewrites it then. Rotating the AUTH token is a cache operation, not a secret rotation.
  name                    = "${var.name}/redis-url"
  description             = "MCPSHIP_REDIS_URL of ${var.name}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "url" {
  secret_id     = aws_secretsmanager_secret.url.id
  secret_string = local.url
}

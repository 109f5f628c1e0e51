# A complete mcpship deployment: VPC, ALB with TLS, ECS Fargate (ARM64)
# behind it, shared state in ElastiCache, alarms and a dashboard, and a
# release pipeline with CodeDeploy blue/green. Values the server and the
# infrastructure must agree on come from deploy/contract.json.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "mcpship", ManagedBy = "terraform" }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  contract = jsondecode(file("${path.module}/../../../contract.json"))

  c_container = local.contract.container
  c_server    = local.contract.server
  c_ecs       = local.contract.ecs
  c_tg        = local.contract.target_group
  c_alb       = local.contract.alb
  c_deploy    = local.contract.deployment
  c_telemetry = local.contract.telemetry

  account       = data.aws_caller_identity.current.account_id
  zone_id       = var.create_hosted_zone ? aws_route53_zone.this[0].zone_id : var.route53_zone_id
  hook_zip_path = coalesce(var.hook_zip_path, "${path.module}/../../../../target/lambda/mcpship-smoke-hook.zip")
}

# --- one customer-managed key for logs, secrets, images, topic, artifacts ----

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account statement is AWS's default key policy, which hands control to IAM.
  #checkov:skip=CKV_AWS_111:Same: "*" in a key policy names only this key.
  #checkov:skip=CKV_AWS_356:Same: "*" in a key policy names only this key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsToEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: logs, secrets, images, alarm topic, pipeline artifacts"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- DNS ------------------------------------------------------------------------

resource "aws_route53_zone" "this" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing needs a KMS key in us-east-1 and a DS record at the parent; enable it when the parent zone supports it.
  #checkov:skip=CKV2_AWS_39:Query logging to CloudWatch is optional for a zone that holds two records.
  count = var.create_hosted_zone ? 1 : 0
  name  = var.domain_name
}

# --- the stack ----------------------------------------------------------------------

module "network" {
  source = "../../modules/network"

  name                = var.name
  availability_zones  = var.availability_zones
  nat_gateway_mode    = var.nat_gateway_mode
  interface_endpoints = var.interface_endpoints
  kms_key_arn         = aws_kms_key.this.arn
}

module "alb" {
  source = "../../modules/alb"

  name                       = var.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.public_subnet_ids
  domain_name                = var.domain_name
  route53_zone_id            = local.zone_id
  create_alias_record        = var.create_hosted_zone || var.route53_zone_id != null
  certificate_arn            = var.certificate_arn
  enable_deletion_protection = var.enable_deletion_protection
  # The deployment hook reaches the test listener from the NAT addresses.
  test_listener_cidrs = [for ip in module.network.nat_public_ips : "${ip}/32"]

  container_port       = local.c_container.port
  idle_timeout         = local.c_alb.idle_timeout_seconds
  ssl_policy           = local.c_alb.ssl_policy
  https_port           = local.c_alb.https_port
  test_listener_port   = local.c_alb.test_listener_port
  deregistration_delay = local.c_tg.deregistration_delay_seconds
  slow_start           = local.c_tg.slow_start_seconds
  stickiness_enabled   = local.c_tg.stickiness_enabled
  health_check         = local.c_tg.health_check
}

module "redis" {
  source = "../../modules/redis"
  count  = var.enable_redis ? 1 : 0

  name                      = var.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.service.security_group_id]
  auth_token                = var.redis_auth_token
  kms_key_arn               = aws_kms_key.this.arn
}

module "service" {
  source = "../../modules/service"

  name                      = var.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  alb_security_group_id     = module.alb.security_group_id
  target_group_arn          = module.alb.target_group_arns["blue"]
  listener_arns             = [module.alb.https_listener_arn, module.alb.test_listener_arn]
  alb_arn_suffix            = module.alb.arn_suffix
  target_group_arn_suffixes = module.alb.target_group_arn_suffixes
  egress_rules = var.enable_redis ? [{
    description       = "Shared state (Redis protocol over TLS)"
    port              = module.redis[0].port
    security_group_id = module.redis[0].security_group_id
  }] : []

  image_tag               = var.image_tag
  desired_count           = var.desired_count
  enable_autoscaling      = var.enable_autoscaling
  max_capacity            = var.max_capacity
  allowed_hosts           = [var.domain_name]
  database_url_secret_arn = var.database_url_secret_arn
  redis_url_secret_arn    = var.enable_redis ? module.redis[0].url_secret_arn : null
  kms_key_arn             = aws_kms_key.this.arn

  container_name            = local.c_container.name
  container_port            = local.c_container.port
  container_port_name       = local.c_container.port_name
  container_user            = local.c_container.user
  writable_path             = local.c_container.writable_path
  cpu_architecture          = local.c_container.cpu_architecture
  task_cpu                  = local.c_container.task_cpu
  task_memory               = local.c_container.task_memory
  stop_timeout              = local.c_ecs.stop_timeout_seconds
  health_check_grace_period = local.c_ecs.health_check_grace_period_seconds
  container_health_check = {
    command              = local.c_container.healthcheck_command
    interval_seconds     = local.c_ecs.container_health_check.interval_seconds
    timeout_seconds      = local.c_ecs.container_health_check.timeout_seconds
    retries              = local.c_ecs.container_health_check.retries
    start_period_seconds = local.c_ecs.container_health_check.start_period_seconds
  }
  load_balancer_idle_timeout = local.c_alb.idle_timeout_seconds
  keep_alive_timeout_seconds = local.c_server.keep_alive_timeout_seconds
  sse_keep_alive_seconds     = local.c_server.sse_keep_alive_seconds
  drain_timeout_seconds      = local.c_server.drain_timeout_seconds
  max_stream_age_seconds     = local.c_server.max_stream_age_seconds
  emf_namespace              = local.c_telemetry.emf_namespace
  service_dimension          = local.c_telemetry.service_name
}

module "observability" {
  source = "../../modules/observability"

  name                      = var.name
  log_group_name            = module.service.log_group_name
  alb_arn_suffix            = module.alb.arn_suffix
  target_group_arn_suffixes = module.alb.target_group_arn_suffixes
  cluster_name              = module.service.cluster_name
  service_name              = module.service.service_name
  emf_namespace             = local.c_telemetry.emf_namespace
  service_dimension         = local.c_telemetry.service_name
  alarmed_tools             = var.alarmed_tools
  alarm_email               = var.alarm_email
  kms_key_arn               = aws_kms_key.this.arn
  enable_query_definitions  = var.enable_query_definitions
}

module "pipeline" {
  source = "../../modules/pipeline"

  name            = var.name
  create_pipeline = var.create_pipeline
  source_type     = var.pipeline_source_type
  connection_arn  = var.connection_arn
  repository_id   = var.repository_id
  branch          = var.branch

  ecr_repository_arn = module.service.repository_arn
  ecr_repository_url = module.service.repository_url
  cluster_name       = module.service.cluster_name
  service_name       = module.service.service_name
  task_family        = module.service.task_family
  container_name     = module.service.container_name
  container_port     = module.service.container_port
  pass_role_arns     = [module.service.execution_role_arn, module.service.task_role_arn]

  prod_listener_arn  = module.alb.https_listener_arn
  test_listener_arn  = module.alb.test_listener_arn
  target_group_names = module.alb.target_group_names
  target_group_arns  = module.alb.target_group_arns
  test_listener_port = local.c_alb.test_listener_port

  deployment_config_name   = local.c_deploy.deployment_config
  termination_wait_minutes = local.c_deploy.termination_wait_minutes
  max_stream_age_seconds   = local.c_server.max_stream_age_seconds
  alarm_names              = module.observability.deployment_alarm_names

  hook_zip_path       = local.hook_zip_path
  hook_test_url       = module.alb.test_url
  hook_production_url = module.alb.url
  vpc_id              = module.network.vpc_id
  hook_subnet_ids     = module.network.private_subnet_ids

  kms_key_arn = aws_kms_key.this.arn
}

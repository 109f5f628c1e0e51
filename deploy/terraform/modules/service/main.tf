# The ECS side: image repository, cluster, task definition (server plus an
# OpenTelemetry collector sidecar), service with the CodeDeploy controller,
# its security group, IAM roles, log group and autoscaling.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  image     = var.image != null ? var.image : "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
  log_group = "/ecs/${var.name}"

  # Server settings, named as the server reads them (see `mcpship config`).
  server_environment = merge(
    {
      PORT                       = tostring(var.container_port)
      HOST                       = "0.0.0.0"
      LOG_FORMAT                 = "json"
      LOG_LEVEL                  = var.log_level
      MCPSHIP_ALLOWED_HOSTS      = join(",", var.allowed_hosts)
      MCPSHIP_KEEP_ALIVE_TIMEOUT = "${var.keep_alive_timeout_seconds}s"
      MCPSHIP_SSE_KEEP_ALIVE     = "${var.sse_keep_alive_seconds}s"
      MCPSHIP_DRAIN_TIMEOUT      = "${var.drain_timeout_seconds}s"
      MCPSHIP_MAX_STREAM_AGE     = "${var.max_stream_age_seconds}s"
      MCPSHIP_EMF                = "true"
      MCPSHIP_EMF_NAMESPACE      = var.emf_namespace
      MCPSHIP_SERVICE_NAME       = var.service_dimension
    },
    var.otel_collector_enabled ? {
      OTEL_SERVICE_NAME           = var.service_dimension
      MCPSHIP_TRACES_EXPORTER     = "otlp"
      OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4318"
    } : {},
    var.redis_url_secret_arn != null ? { MCPSHIP_STATE = "redis" } : {},
    # Without a database secret: SQLite on the writable volume, seeded with the
    # built-in corpus at every start.
    var.database_url_secret_arn == null ? { DATABASE_URL = "sqlite://${var.writable_path}/mcpship.db" } : {},
    var.environment,
  )

  server_secrets = merge(
    var.database_url_secret_arn != null ? { DATABASE_URL = var.database_url_secret_arn } : {},
    var.redis_url_secret_arn != null ? { MCPSHIP_REDIS_URL = var.redis_url_secret_arn } : {},
    var.secrets,
  )

  secret_arns        = values(local.server_secrets)
  secretsmanager_arn = [for a in local.secret_arns : a if can(regex("^arn:[^:]+:secretsmanager:", a))]
  ssm_arns           = [for a in local.secret_arns : a if can(regex("^arn:[^:]+:ssm:", a))]

  awslogs = {
    logDriver = "awslogs"
    options = {
      "awslogs-group"         = local.log_group
      "awslogs-region"        = data.aws_region.current.name
      "awslogs-stream-prefix" = var.container_name
      # A slow log pipe must never block the server: buffer, then drop.
      "mode"            = "non-blocking"
      "max-buffer-size" = var.log_buffer_size
    }
  }

  server_container = {
    name                   = var.container_name
    image                  = local.image
    essential              = true
    cpu                    = var.otel_collector_enabled ? var.task_cpu - 64 : var.task_cpu
    memoryReservation      = var.otel_collector_enabled ? var.task_memory - 192 : var.task_memory - 64
    user                   = var.container_user
    readonlyRootFilesystem = true
    privileged             = false
    stopTimeout            = var.stop_timeout
    linuxParameters = {
      initProcessEnabled = true # reaps zombies, forwards SIGTERM
      capabilities       = { drop = ["ALL"] }
    }
    portMappings = [{
      name          = var.container_port_name
      containerPort = var.container_port
      protocol      = "tcp"
      appProtocol   = "http"
    }]
    mountPoints = [{
      sourceVolume  = "data"
      containerPath = var.writable_path
      readOnly      = false
    }]
    environment = [for k in sort(keys(local.server_environment)) : { name = k, value = local.server_environment[k] }]
    secrets     = [for k in sort(keys(local.server_secrets)) : { name = k, valueFrom = local.server_secrets[k] }]
    healthCheck = {
      command     = var.container_health_check.command
      interval    = var.container_health_check.interval_seconds
      timeout     = var.container_health_check.timeout_seconds
      retries     = var.container_health_check.retries
      startPeriod = var.container_health_check.start_period_seconds
    }
    dependsOn        = [for d in [{ containerName = "otel-collector", condition = "START" }] : d if var.otel_collector_enabled]
    logConfiguration = local.awslogs
  }

  # OTLP in on loopback, X-Ray out. Metrics do not pass through here: the
  # server writes them as CloudWatch embedded metric format log lines.
  collector_config = <<-YAML
    extensions:
      health_check:
    receivers:
      otlp:
        protocols:
          grpc:
            endpoint: 127.0.0.1:4317
          http:
            endpoint: 127.0.0.1:4318
    processors:
      batch:
    exporters:
      awsxray:
    service:
      extensions: [health_check]
      pipelines:
        traces:
          receivers: [otlp]
          processors: [batch]
          exporters: [awsxray]
  YAML

  collector_container = {
    name                   = "otel-collector"
    image                  = var.otel_collector_image
    essential              = false # losing traces must not stop the server
    cpu                    = 64
    memory                 = 128
    memoryReservation      = 64
    readonlyRootFilesystem = true
    privileged             = false
    stopTimeout            = var.stop_timeout
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    environment = [{ name = "AOT_CONFIG_CONTENT", value = local.collector_config }]
    healthCheck = {
      command     = ["CMD", "/healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    logConfiguration = merge(local.awslogs, {
      options = merge(local.awslogs.options, { "awslogs-stream-prefix" = "otel-collector", "max-buffer-size" = "4m" })
    })
  }

  containers = [for c in [local.server_container, local.collector_container] : c if c.name != "otel-collector" || var.otel_collector_enabled]
}

# --- image repository -----------------------------------------------------------

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE" # a tag always names the same image: rollbacks are exact
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.kms_key_arn != null ? "KMS" : "AES256"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Drop untagged layers (interrupted pushes, multi-arch leftovers) after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the last ${var.ecr_keep_images} images for rollbacks"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

# --- logs --------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days, to bound storage cost); set 365 or more where an audit requires it.
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- IAM: execution role (ECS agent: pull, logs, secrets) ---------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-task-execution"
  description        = "ECS agent for ${var.name}: pull the image, write logs, read the task's secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # has no resource-level form
    resources = ["*"]
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.this.arn]
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  dynamic "statement" {
    for_each = length(local.secretsmanager_arn) > 0 ? [1] : []
    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secretsmanager_arn
    }
  }
  dynamic "statement" {
    for_each = length(local.ssm_arns) > 0 ? [1] : []
    content {
      sid       = "ReadParameters"
      actions   = ["ssm:GetParameters"]
      resources = local.ssm_arns
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- IAM: task role (what the server and the sidecar may call) ----------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "The ${var.name} server and its collector sidecar"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid = "XRayTraces"
    # X-Ray has no resource-level permissions for these actions.
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:GetSamplingStatisticSummaries",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "task" {
  count  = var.otel_collector_enabled ? 1 : 0
  name   = "xray-traces"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- task definition -------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.task_cpu)
  memory                   = tostring(var.task_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.containers)

  runtime_platform {
    cpu_architecture        = var.cpu_architecture
    operating_system_family = "LINUX"
  }

  # Fargate has no tmpfs: a task volume (ephemeral storage) is the writable
  # path. Mounted where the image declares VOLUME, it takes the image's owner.
  volume {
    name = "data"
  }

  # Old revisions stay registered: CodeDeploy rolls back to them.
  skip_destroy = true

  tags = var.tags
}

# --- security group -----------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "${var.name} tasks: reachable only from the load balancer"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-tasks" })
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "MCP and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = var.alb_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = var.alb_security_group_id
  description                  = "Load balancer to the tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs (VPC endpoints or NAT): ECR, logs, secrets, X-Ray"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "extra" {
  for_each = { for i, r in var.egress_rules : tostring(i) => r } # ids may be known only after apply

  security_group_id            = aws_security_group.tasks.id
  description                  = each.value.description
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = each.value.security_group_id
}

# --- cluster and service ------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# Orders the service after the listeners (a plain dependency carrier; no
# provider needed).
resource "terraform_data" "listeners" {
  input = var.listener_arns
}

resource "aws_ecs_service" "this" {
  name                              = var.name
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  scheduling_strategy               = "REPLICA"
  health_check_grace_period_seconds = var.health_check_grace_period
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false
  wait_for_steady_state             = false

  deployment_controller {
    type = var.deployment_controller
  }

  dynamic "deployment_circuit_breaker" {
    for_each = var.deployment_controller == "ECS" ? [1] : []
    content {
      enable   = true
      rollback = true
    }
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  dynamic "service_connect_configuration" {
    for_each = var.service_connect_namespace_arn != null ? [1] : []
    content {
      enabled   = true
      namespace = var.service_connect_namespace_arn
      service {
        port_name      = var.container_port_name
        discovery_name = var.name
        client_alias {
          port     = var.container_port
          dns_name = var.name
        }
        timeout {
          idle_timeout_seconds        = var.load_balancer_idle_timeout
          per_request_timeout_seconds = 0 # streams are long requests
        }
      }
    }
  }

  tags = var.tags

  lifecycle {
    # CodeDeploy owns the task definition and the target group of the running
    # service after the first release; autoscaling owns the task count.
    ignore_changes = [task_definition, load_balancer, desired_count]
  }

  depends_on = [aws_iam_role_policy.execution, terraform_data.listeners]
}

# --- autoscaling -----------------------------------------------------------------------------

resource "aws_appautoscaling_target" "this" {
  count = var.enable_autoscaling ? 1 : 0

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  count = var.enable_autoscaling ? 1 : 0

  name               = "${var.name}-cpu-${var.cpu_target_percent}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# ALB request count per target, summed over both target groups. The
# predefined ALBRequestCountPerTarget metric names one target group, and
# CodeDeploy moves the tasks to the other one on every release: after the
# first release the policy would watch an empty group and scale in.
resource "aws_appautoscaling_policy" "requests" {
  count = var.enable_autoscaling && var.requests_per_target > 0 ? 1 : 0

  name               = "${var.name}-requests-per-target"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      dynamic "metrics" {
        for_each = var.target_group_arn_suffixes
        content {
          id          = metrics.key
          return_data = false
          metric_stat {
            stat = "Sum"
            metric {
              namespace   = "AWS/ApplicationELB"
              metric_name = "RequestCountPerTarget"
              dimensions {
                name  = "LoadBalancer"
                value = var.alb_arn_suffix
              }
              dimensions {
                name  = "TargetGroup"
                value = metrics.value
              }
            }
          }
        }
      }
      metrics {
        id          = "per_target"
        label       = "Requests per target per minute (blue + green)"
        expression  = "SUM([${join(", ", keys(var.target_group_arn_suffixes))}])"
        return_data = true
      }
    }
  }
}

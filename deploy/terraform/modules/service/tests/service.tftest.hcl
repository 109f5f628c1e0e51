# The task definition and service, against a mocked provider. Expected
# values come from deploy/contract.json.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name                      = "mcpship"
  vpc_id                    = "vpc-0123456789abcdef0"
  subnet_ids                = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  alb_security_group_id     = "sg-0123456789abcdef0"
  target_group_arn          = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mcpship-blue/0123456789abcdef"
  alb_arn_suffix            = "app/mcpship/0123456789abcdef"
  target_group_arn_suffixes = { blue = "targetgroup/mcpship-blue/0123456789abcdef", green = "targetgroup/mcpship-green/0123456789abcdef" }
  allowed_hosts             = ["mcp.example.test"]
  redis_url_secret_arn      = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mcpship/redis-url-AbCdEf"
}

run "task_and_service_follow_the_contract" {
  command = apply

  assert {
    condition     = aws_ecs_task_definition.this.cpu == "256" && aws_ecs_task_definition.this.memory == "512" && aws_ecs_task_definition.this.runtime_platform[0].cpu_architecture == "ARM64" && aws_ecs_task_definition.this.network_mode == "awsvpc"
    error_message = "Task must be 0.25 vCPU / 512 MiB, ARM64, awsvpc."
  }

  assert {
    condition     = alltrue([for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.readonlyRootFilesystem == true && c.privileged == false])
    error_message = "Every container needs a read-only root filesystem and no privileges."
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c if c.name == "mcpship"][0].user == jsondecode(file("../../../contract.json")).container.user
    error_message = "The server must run as the contract's non-root user."
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c if c.name == "mcpship"][0].stopTimeout == jsondecode(file("../../../contract.json")).ecs.stop_timeout_seconds
    error_message = "stopTimeout must be the contract's."
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c if c.name == "mcpship"][0].healthCheck.command == ["CMD", "/mcpship", "healthcheck"]
    error_message = "Container health check must run /mcpship healthcheck (no shell in the image)."
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c if c.name == "mcpship"][0].portMappings[0].containerPort == jsondecode(file("../../../contract.json")).container.port
    error_message = "Container port must be the contract's."
  }

  assert {
    condition = {
      for e in [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c if c.name == "mcpship"][0].environment : e.name => e.value
      if contains(["MCPSHIP_KEEP_ALIVE_TIMEOUT", "MCPSHIP_SSE_KEEP_ALIVE", "MCPSHIP_DRAIN_TIMEOUT", "MCPSHIP_MAX_STREAM_AGE", "MCPSHIP_STATE"], e.name)
      } == {
      MCPSHIP_KEEP_ALIVE_TIMEOUT = "${jsondecode(file("../../../contract.json")).server.keep_alive_timeout_seconds}s"
      MCPSHIP_SSE_KEEP_ALIVE     = "${jsondecode(file("../../../contract.json")).server.sse_keep_alive_seconds}s"
      MCPSHIP_DRAIN_TIMEOUT      = "${jsondecode(file("../../../contract.json")).server.drain_timeout_seconds}s"
      MCPSHIP_MAX_STREAM_AGE     = "${jsondecode(file("../../../contract.json")).server.max_stream_age_seconds}s"
      MCPSHIP_STATE              = "redis"
    }
    error_message = "Server timeouts in the task environment must be the contract's, and Redis state must be on with a Redis URL."
  }

  assert {
    condition     = [for s in [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c if c.name == "mcpship"][0].secrets : s.name] == ["MCPSHIP_REDIS_URL"]
    error_message = "The Redis URL must arrive as a secret, not as plain environment."
  }

  assert {
    condition     = alltrue([for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.logConfiguration.options.mode == "non-blocking" && can(c.logConfiguration.options["max-buffer-size"])])
    error_message = "Logging must be non-blocking with a bounded buffer."
  }

  assert {
    condition     = aws_ecs_service.this.deployment_controller[0].type == "CODE_DEPLOY" && aws_ecs_service.this.launch_type == "FARGATE"
    error_message = "Service must be Fargate with the CodeDeploy (blue/green) controller."
  }

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].assign_public_ip == false
    error_message = "Tasks must not get public IPs."
  }

  assert {
    condition     = aws_ecs_service.this.health_check_grace_period_seconds == jsondecode(file("../../../contract.json")).ecs.health_check_grace_period_seconds
    error_message = "Health check grace period must be the contract's."
  }

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE" && aws_ecr_repository.this.image_scanning_configuration[0].scan_on_push
    error_message = "Image tags must be immutable and scanned on push."
  }

  assert {
    condition     = aws_appautoscaling_policy.cpu[0].target_tracking_scaling_policy_configuration[0].target_value == 60 && length(aws_appautoscaling_policy.requests) == 1
    error_message = "Autoscaling must track 60% CPU and requests per target."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.from_alb.referenced_security_group_id == var.alb_security_group_id && aws_vpc_security_group_ingress_rule.from_alb.from_port == 8080
    error_message = "Tasks must accept traffic only from the load balancer's security group, on the container port."
  }
}

run "rejects_a_drain_longer_than_stop_timeout" {
  command = plan
  variables {
    drain_timeout_seconds = 30
  }
  expect_failures = [var.drain_timeout_seconds]
}

run "rejects_a_keep_alive_shorter_than_the_alb_idle_timeout" {
  command = plan
  variables {
    keep_alive_timeout_seconds = 3600
  }
  expect_failures = [var.keep_alive_timeout_seconds]
}

run "rejects_sse_keep_alive_beyond_the_alb_idle_timeout" {
  command = plan
  variables {
    sse_keep_alive_seconds = 3600
  }
  expect_failures = [var.sse_keep_alive_seconds]
}

run "rejects_service_connect_with_codedeploy" {
  command = plan
  variables {
    service_connect_namespace_arn = "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-0123456789abcdef"
  }
  expect_failures = [var.service_connect_namespace_arn]
}

run "rejects_a_stop_timeout_beyond_fargate" {
  command = plan
  variables {
    stop_timeout = 121
  }
  expect_failures = [var.stop_timeout]
}

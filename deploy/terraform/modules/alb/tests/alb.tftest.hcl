# The load balancer's settings for long-lived MCP traffic, against a mocked
# provider. Expected values come from deploy/contract.json.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name            = "mcpship"
  vpc_id          = "vpc-0123456789abcdef0"
  subnet_ids      = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  domain_name     = "mcp.example.test"
  route53_zone_id = "Z0000000000000000TEST"
}

run "defaults_follow_the_contract" {
  command = apply

  assert {
    condition     = aws_lb.this.idle_timeout == jsondecode(file("../../../contract.json")).alb.idle_timeout_seconds && aws_lb.this.idle_timeout == 3600
    error_message = "ALB idle timeout must be the contract's 3600 s: streams go quiet between keep-alives."
  }

  assert {
    condition     = aws_lb.this.drop_invalid_header_fields && aws_lb.this.access_logs[0].enabled && aws_lb.this.enable_deletion_protection
    error_message = "ALB must drop invalid headers, write access logs and be protected from deletion by default."
  }

  assert {
    condition     = aws_lb_listener.https.ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06" && aws_lb_listener.https.protocol == "HTTPS" && aws_lb_listener.https.port == 443
    error_message = "Production listener must be HTTPS on 443 with the TLS 1.3 policy."
  }

  assert {
    condition     = aws_lb_listener.test.port == jsondecode(file("../../../contract.json")).alb.test_listener_port && aws_lb_listener.test.protocol == "HTTPS" && aws_lb_listener.test.ssl_policy == aws_lb_listener.https.ssl_policy
    error_message = "Test listener must be HTTPS on the contract's port with the same TLS policy."
  }

  assert {
    condition     = aws_lb_listener.http_redirect.default_action[0].type == "redirect" && aws_lb_listener.http_redirect.default_action[0].redirect[0].protocol == "HTTPS" && aws_lb_listener.http_redirect.default_action[0].redirect[0].status_code == "HTTP_301"
    error_message = "HTTP must redirect to HTTPS."
  }

  assert {
    condition = alltrue([for tg in aws_lb_target_group.this :
      tg.target_type == "ip" &&
      tg.port == jsondecode(file("../../../contract.json")).container.port &&
      tg.health_check[0].path == "/ready" &&
      tg.health_check[0].path == jsondecode(file("../../../contract.json")).target_group.health_check.path &&
      tg.health_check[0].interval == jsondecode(file("../../../contract.json")).target_group.health_check.interval_seconds &&
      tg.health_check[0].unhealthy_threshold == jsondecode(file("../../../contract.json")).target_group.health_check.unhealthy_threshold
    ])
    error_message = "Both target groups must register tasks by IP on the container port and health-check the readiness route."
  }

  assert {
    condition     = alltrue([for tg in aws_lb_target_group.this : tostring(tg.deregistration_delay) == tostring(jsondecode(file("../../../contract.json")).target_group.deregistration_delay_seconds)])
    error_message = "Deregistration delay must equal the contract's."
  }

  assert {
    condition     = alltrue([for tg in aws_lb_target_group.this : tg.stickiness[0].enabled == false])
    error_message = "Stickiness must be off: MCP clients keep no cookies."
  }

  assert {
    condition     = alltrue([for tg in aws_lb_target_group.this : tg.slow_start == jsondecode(file("../../../contract.json")).target_group.slow_start_seconds])
    error_message = "Slow start must equal the contract's."
  }

  assert {
    condition     = toset(keys(aws_lb_target_group.this)) == toset(["blue", "green"])
    error_message = "CodeDeploy needs a blue and a green target group."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.test_listener) == 0
    error_message = "Without test_listener_cidrs nobody may reach the test listener."
  }
}

run "rejects_slow_start_with_least_outstanding_requests" {
  command = plan

  variables {
    load_balancing_algorithm = "least_outstanding_requests"
  }

  expect_failures = [var.load_balancing_algorithm]
}

run "rejects_a_world_open_test_listener" {
  command = plan

  variables {
    test_listener_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.test_listener_cidrs]
}

run "rejects_health_checks_on_the_mcp_endpoint" {
  command = plan

  variables {
    health_check = { path = "/mcp" }
  }

  expect_failures = [var.health_check]
}

run "rejects_the_default_idle_timeout" {
  command = plan

  variables {
    idle_timeout = 59
  }

  expect_failures = [var.idle_timeout]
}

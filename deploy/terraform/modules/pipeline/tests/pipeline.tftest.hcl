# Release path: CodeDeploy blue/green with rollback, hook functions,
# least-privilege statements, against a mocked provider.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name                = "mcpship"
  repository_id       = "example/mcpship"
  ecr_repository_arn  = "arn:aws:ecr:us-east-1:123456789012:repository/mcpship"
  ecr_repository_url  = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcpship"
  cluster_name        = "mcpship"
  service_name        = "mcpship"
  task_family         = "mcpship"
  container_name      = "mcpship"
  container_port      = 8080
  pass_role_arns      = ["arn:aws:iam::123456789012:role/mcpship-task-execution", "arn:aws:iam::123456789012:role/mcpship-task"]
  prod_listener_arn   = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/mcpship/0123456789abcdef/1111111111111111"
  test_listener_arn   = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/mcpship/0123456789abcdef/2222222222222222"
  target_group_names  = { blue = "mcpship-blue", green = "mcpship-green" }
  target_group_arns   = { blue = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mcpship-blue/0123456789abcdef", green = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mcpship-green/0123456789abcdef" }
  alarm_names         = ["mcpship-alb-5xx-rate"]
  hook_zip_path       = "../../tests/fixtures/hook.zip"
  hook_test_url       = "https://mcp.example.test:8443/mcp"
  hook_production_url = "https://mcp.example.test/mcp"
  vpc_id              = "vpc-0123456789abcdef0"
  hook_subnet_ids     = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
}

run "blue_green_with_rollback_and_hooks" {
  command = apply

  assert {
    condition     = aws_codedeploy_deployment_group.this.auto_rollback_configuration[0].enabled && toset(aws_codedeploy_deployment_group.this.auto_rollback_configuration[0].events) == toset(["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"])
    error_message = "Releases must roll back on failure and on alarm."
  }

  assert {
    condition     = aws_codedeploy_deployment_group.this.alarm_configuration[0].enabled && aws_codedeploy_deployment_group.this.alarm_configuration[0].alarms == toset(["mcpship-alb-5xx-rate"])
    error_message = "The deployment group must watch the given alarms."
  }

  assert {
    condition     = aws_codedeploy_deployment_group.this.deployment_style[0].deployment_type == "BLUE_GREEN" && aws_codedeploy_deployment_group.this.blue_green_deployment_config[0].terminate_blue_instances_on_deployment_success[0].termination_wait_time_in_minutes * 60 >= jsondecode(file("../../../contract.json")).server.max_stream_age_seconds
    error_message = "Blue/green with old tasks kept at least the maximum stream age."
  }

  assert {
    condition     = length(aws_codedeploy_deployment_group.this.load_balancer_info[0].target_group_pair_info[0].test_traffic_route[0].listener_arns) == 1
    error_message = "The test listener must be the deployment group's test traffic route."
  }

  assert {
    condition = alltrue([for f in aws_lambda_function.hook :
    f.runtime == "provided.al2023" && f.architectures == tolist(["arm64"]) && f.handler == "bootstrap" && can(f.environment[0].variables["MCPSHIP_SMOKE_URL"])])
    error_message = "Hook functions must be provided.al2023 on arm64 and know what to smoke-test."
  }

  assert {
    condition = {
      for k, f in aws_lambda_function.hook : k => f.function_name
      } == {
      for h in yamldecode(file("../../../pipeline/appspec.yaml")).Hooks : keys(h)[0] => values(h)[0]
    }
    error_message = "The appspec's hooks must name the functions this module creates."
  }

  assert {
    condition     = aws_lambda_function.hook["BeforeAllowTraffic"].environment[0].variables["MCPSHIP_SMOKE_URL"] == var.hook_test_url
    error_message = "BeforeAllowTraffic must test the test listener."
  }

  assert {
    condition     = data.aws_iam_policy_document.hook.statement[0].actions == toset(["codedeploy:PutLifecycleEventHookExecutionStatus"])
    error_message = "The hook must be allowed to report its result to CodeDeploy."
  }

  assert {
    condition     = aws_codebuild_project.this.environment[0].privileged_mode && aws_codebuild_project.this.source[0].buildspec == "deploy/pipeline/buildspec.yml"
    error_message = "CodeBuild needs privileged mode for docker buildx and the repository's buildspec."
  }

  assert {
    condition     = [for s in aws_codepipeline.this[0].stage : s.name] == ["Source", "Build", "Deploy"] && aws_codepipeline.this[0].stage[2].action[0].provider == "CodeDeployToECS"
    error_message = "Pipeline must be Source -> Build -> Deploy (CodeDeployToECS)."
  }

  assert {
    condition     = aws_codepipeline.this[0].stage[2].action[0].configuration.TaskDefinitionTemplatePath == "taskdef.json" && aws_codepipeline.this[0].stage[2].action[0].configuration.AppSpecTemplatePath == "appspec.yaml"
    error_message = "Deploy action must read taskdef.json and appspec.yaml from the build output."
  }

  assert {
    condition     = length(aws_codestarconnections_connection.this) == 1
    error_message = "Without connection_arn a connection must be created."
  }
}

run "bake_time_shorter_than_stream_age_is_refused" {
  command = plan
  variables {
    termination_wait_minutes = 1
  }
  expect_failures = [var.termination_wait_minutes]
}

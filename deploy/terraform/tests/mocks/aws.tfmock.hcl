# Values for the mocked AWS provider of the Terraform tests: the provider
# validates ARNs, IPs and JSON it is handed, so generated random strings
# would not do. Used as mock_provider "aws" { source = "../../tests/mocks" }.

mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012", arn = "arn:aws:iam::123456789012:user/test" }
}

mock_data "aws_region" {
  defaults = { name = "us-east-1" }
}

mock_data "aws_partition" {
  defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
}

mock_data "aws_iam_policy_document" {
  defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Principal\":{\"Service\":\"ecs-tasks.amazonaws.com\"}}]}" }
}

mock_data "aws_elb_service_account" {
  defaults = { arn = "arn:aws:iam::127311923021:root" }
}

mock_resource "aws_kms_key" {
  defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000", key_id = "00000000-0000-0000-0000-000000000000" }
}

mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:mock" }
}

mock_resource "aws_s3_bucket" {
  defaults = { arn = "arn:aws:s3:::mock-bucket" }
}

mock_resource "aws_eip" {
  defaults = { public_ip = "198.51.100.7" }
}

mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/mcpship/0123456789abcdef"
    arn_suffix = "app/mcpship/0123456789abcdef"
    dns_name   = "mcpship-123.us-east-1.elb.amazonaws.com"
    zone_id    = "Z35SXDOTRQ7X7K"
  }
}

mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mcpship-tg/0123456789abcdef"
    arn_suffix = "targetgroup/mcpship-tg/0123456789abcdef"
  }
}

mock_resource "aws_lb_listener" {
  defaults = { arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/mcpship/0123456789abcdef/0123456789abcdef" }
}

mock_resource "aws_acm_certificate" {
  defaults = {
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    domain_validation_options = [{
      domain_name           = "mcp.example.test"
      resource_record_name  = "_0123.mcp.example.test."
      resource_record_type  = "CNAME"
      resource_record_value = "_4567.acm-validations.aws."
    }]
  }
}

mock_resource "aws_acm_certificate_validation" {
  defaults = { certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000" }
}

mock_resource "aws_route53_zone" {
  defaults = { zone_id = "Z0000000000000000TEST", arn = "arn:aws:route53:::hostedzone/Z0000000000000000TEST" }
}

mock_resource "aws_ecr_repository" {
  defaults = { arn = "arn:aws:ecr:us-east-1:123456789012:repository/mcpship", repository_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcpship" }
}

mock_resource "aws_ecs_cluster" {
  defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:cluster/mcpship", id = "arn:aws:ecs:us-east-1:123456789012:cluster/mcpship" }
}

mock_resource "aws_ecs_task_definition" {
  defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/mcpship:1" }
}

mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:us-east-1:123456789012:mcpship-alarms" }
}

mock_resource "aws_cloudwatch_metric_alarm" {
  defaults = { arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:mock" }
}

mock_resource "aws_secretsmanager_secret" {
  defaults = { arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mcpship/redis-url-AbCdEf" }
}

mock_resource "aws_elasticache_replication_group" {
  defaults = { arn = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:mcpship-state", primary_endpoint_address = "mcpship-state.abc123.ng.0001.use1.cache.amazonaws.com" }
}

mock_resource "aws_lambda_function" {
  defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:function:mcpship-hook", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:mcpship-hook/invocations" }
}

mock_resource "aws_codebuild_project" {
  defaults = { arn = "arn:aws:codebuild:us-east-1:123456789012:project/mcpship" }
}

mock_resource "aws_codedeploy_app" {
  defaults = { arn = "arn:aws:codedeploy:us-east-1:123456789012:application:mcpship" }
}

mock_resource "aws_codestarconnections_connection" {
  defaults = { arn = "arn:aws:codestar-connections:us-east-1:123456789012:connection/00000000-0000-0000-0000-000000000000" }
}

mock_resource "aws_codepipeline" {
  defaults = { arn = "arn:aws:codepipeline:us-east-1:123456789012:mcpship" }
}

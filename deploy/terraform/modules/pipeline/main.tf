# Release path: CodePipeline (source -> CodeBuild -> CodeDeploy) with ECS
# blue/green. CodeBuild tests, builds the multi-arch image, pushes it, waits
# for the ECR scan and writes imageDetail.json, taskdef.json and appspec.yaml.
# CodeDeploy starts the new tasks in the idle target group, runs the
# BeforeAllowTraffic smoke hook against the test listener, moves production
# traffic, runs AfterAllowTraffic, keeps the old tasks for the bake time and
# rolls back on failure or on an alarm.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  connection_arn = var.source_type == "CodeStarSourceConnection" ? coalesce(var.connection_arn, try(aws_codestarconnections_connection.this[0].arn, null)) : null

  buckets = merge(
    { artifacts = "${var.name}-pipeline-artifacts-${local.account}" },
    var.source_type == "S3" ? { source = "${var.name}-pipeline-source-${local.account}" } : {},
  )

  hooks = {
    BeforeAllowTraffic = { function = "${var.name}-before-allow-traffic", url = var.hook_test_url }
    AfterAllowTraffic  = { function = "${var.name}-after-allow-traffic", url = var.hook_production_url }
  }

  deployment_group_arn = "arn:${local.partition}:codedeploy:${local.region}:${local.account}:deploymentgroup:${aws_codedeploy_app.this.name}/${var.name}"
}

# --- buckets (artifacts; source when source_type = S3) ---------------------------------

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Pipeline artifacts are written and read only by the pipeline's roles; CloudTrail data events are the account-level record of access.
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt from the repository; cross-region replication would only copy build output.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events of the artifact bucket.
  for_each = local.buckets

  bucket        = each.value
  force_destroy = var.force_destroy_buckets
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled" # an S3 source action needs versioning
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  #checkov:skip=CKV_AWS_145:Encrypted with var.kms_key_arn when given; the complete example passes its customer-managed key.
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn != null ? "aws:kms" : "AES256"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    id     = "expire-old-artifacts"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "bucket_tls_only" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  policy = data.aws_iam_policy_document.bucket_tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# --- source connection ----------------------------------------------------------------

resource "aws_codestarconnections_connection" "this" {
  count = var.source_type == "CodeStarSourceConnection" && var.connection_arn == null ? 1 : 0

  name          = "${var.name}-source"
  provider_type = "GitHub"
  tags          = var.tags
}

# --- CodeBuild --------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "build" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days, to bound storage cost); set 365 or more where an audit requires it.
  name              = "/codebuild/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  for_each = toset(["codebuild", "codedeploy", "codepipeline", "lambda"])

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "build" {
  name               = "${var.name}-codebuild"
  description        = "Builds, scans and pushes the ${var.name} image"
  assume_role_policy = data.aws_iam_policy_document.assume["codebuild"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "build" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.build.arn}:*"]
  }
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # no resource-level form
    resources = ["*"]
  }
  statement {
    sid = "PushAndScan"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:DescribeImages",
      "ecr:StartImageScan",
      "ecr:DescribeImageScanFindings",
    ]
    resources = [var.ecr_repository_arn]
  }
  statement {
    sid       = "ReadTaskDefinition"
    actions   = ["ecs:DescribeTaskDefinition"] # no resource-level form
    resources = ["*"]
  }
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${aws_s3_bucket.this["artifacts"].arn}/*"]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "build" {
  name   = "build"
  role   = aws_iam_role.build.id
  policy = data.aws_iam_policy_document.build.json
}

resource "aws_codebuild_project" "this" {
  #checkov:skip=CKV_AWS_316:docker buildx needs the Docker daemon, which CodeBuild runs only in privileged mode; the build runs nothing but this repository's buildspec.
  name           = var.name
  description    = "Test, build (linux/arm64 + linux/amd64), push and scan the ${var.name} image"
  service_role   = aws_iam_role.build.arn
  build_timeout  = var.build_timeout_minutes
  queued_timeout = 60
  encryption_key = var.kms_key_arn

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type                        = var.codebuild_environment_type
    image                       = var.codebuild_image
    compute_type                = var.codebuild_compute_type
    image_pull_credentials_type = "CODEBUILD"
    privileged_mode             = true

    environment_variable {
      name  = "IMAGE_REPO_URI"
      value = var.ecr_repository_url
    }
    environment_variable {
      name  = "TASK_FAMILY"
      value = var.task_family
    }
    environment_variable {
      name  = "CONTAINER_NAME"
      value = var.container_name
    }
    environment_variable {
      name  = "FAIL_ON_SEVERITY"
      value = var.fail_on_severity
    }
  }

  source {
    type      = "CODEPIPELINE"
    buildspec = var.buildspec_path
  }

  cache {
    type = "LOCAL"
    # LOCAL_CUSTOM_CACHE keeps the buildspec's cache paths (the Cargo registry).
    modes = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE", "LOCAL_CUSTOM_CACHE"]
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build.name
    }
  }

  tags = var.tags
}

# --- pre/post-traffic hook functions -------------------------------------------------------
# One zip, two functions: CodeDeploy's event does not say which lifecycle
# hook is running, so each function is told what to test by its environment.

resource "aws_cloudwatch_log_group" "hook" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days, to bound storage cost); set 365 or more where an audit requires it.
  for_each = local.hooks

  name              = "/aws/lambda/${each.value.function}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "hook" {
  name               = "${var.name}-deploy-hook"
  description        = "Smoke-tests a ${var.name} release and reports to CodeDeploy"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "hook" {
  #checkov:skip=CKV_AWS_111:Lambda's VPC networking (ec2:*NetworkInterface*) and X-Ray writes have no resource-level permissions; the CodeDeploy and logs statements are scoped.
  #checkov:skip=CKV_AWS_356:Same actions: AWS accepts only Resource "*" for them.
  statement {
    sid       = "ReportHookResult"
    actions   = ["codedeploy:PutLifecycleEventHookExecutionStatus"]
    resources = [local.deployment_group_arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.hook : "${g.arn}:*"]
  }
  statement {
    sid = "VpcNetworkInterfaces"
    # Lambda creates and removes the function's network interfaces; these
    # EC2 actions have no resource-level form for this use.
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "DecryptEnvironment"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "hook" {
  name   = "hook"
  role   = aws_iam_role.hook.id
  policy = data.aws_iam_policy_document.hook.json
}

resource "aws_security_group" "hook" {
  name        = "${var.name}-deploy-hook"
  description = "Deployment hook: out to the load balancer's listeners and AWS APIs"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-deploy-hook" })
}

resource "aws_vpc_security_group_egress_rule" "hook" {
  for_each = toset([tostring(var.test_listener_port), "443"])

  security_group_id = aws_security_group.hook.id
  description       = "HTTPS to the load balancer (${each.key}) and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_lambda_function" "hook" {
  #checkov:skip=CKV_AWS_116:CodeDeploy invokes the hook and fails the release when no status arrives in time; a dead-letter queue would hold events nobody replays.
  #checkov:skip=CKV_AWS_272:The zip is built by this repository's pipeline; Lambda code signing needs a Signer profile the kit does not assume.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is var.hook_reserved_concurrency (off by default): a hook runs once per release, and a new account's concurrency quota of 10 leaves nothing to reserve.
  for_each = local.hooks

  function_name                  = each.value.function
  description                    = "${each.key} hook of ${var.name} releases: mcpship smoke test against ${each.value.url}"
  role                           = aws_iam_role.hook.arn
  runtime                        = "provided.al2023"
  architectures                  = ["arm64"]
  handler                        = "bootstrap"
  filename                       = var.hook_zip_path
  source_code_hash               = filebase64sha256(var.hook_zip_path)
  timeout                        = var.hook_timeout_seconds
  memory_size                    = 128
  reserved_concurrent_executions = var.hook_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = merge({
      MCPSHIP_SMOKE_URL = each.value.url
      LOG_LEVEL         = "info"
    }, var.hook_environment)
  }

  vpc_config {
    subnet_ids         = var.hook_subnet_ids
    security_group_ids = [aws_security_group.hook.id]
  }

  tracing_config {
    mode = "Active"
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.hook, aws_iam_role_policy.hook]
}

# --- CodeDeploy -------------------------------------------------------------------------------

resource "aws_codedeploy_app" "this" {
  name             = var.name
  compute_platform = "ECS"
  tags             = var.tags
}

resource "aws_iam_role" "codedeploy" {
  name               = "${var.name}-codedeploy"
  description        = "CodeDeploy blue/green for the ${var.name} ECS service"
  assume_role_policy = data.aws_iam_policy_document.assume["codedeploy"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "codedeploy" {
  #checkov:skip=CKV_AWS_356:Only the Describe* statement uses Resource "*"; those calls have no resource-level permissions.
  # The same actions as the AWSCodeDeployRoleForECS managed policy, scoped
  # to this service, its listeners, target groups and hooks.
  statement {
    sid       = "TaskSets"
    actions   = ["ecs:DescribeServices", "ecs:CreateTaskSet", "ecs:UpdateServicePrimaryTaskSet", "ecs:DeleteTaskSet"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account}:service/${var.cluster_name}/${var.service_name}", "arn:${local.partition}:ecs:${local.region}:${local.account}:task-set/${var.cluster_name}/${var.service_name}/*"]
  }
  statement {
    sid       = "Describe"
    actions   = ["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules", "cloudwatch:DescribeAlarms"]
    resources = ["*"] # Describe* calls have no resource-level form
  }
  statement {
    sid       = "ShiftTraffic"
    actions   = ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"]
    resources = [var.prod_listener_arn, var.test_listener_arn, "${replace(var.prod_listener_arn, ":listener/", ":listener-rule/")}/*", "${replace(var.test_listener_arn, ":listener/", ":listener-rule/")}/*"]
  }
  statement {
    sid       = "Hooks"
    actions   = ["lambda:InvokeFunction"]
    resources = [for f in aws_lambda_function.hook : f.arn]
  }
  statement {
    sid       = "Revision"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.this["artifacts"].arn}/*"]
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.pass_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "codedeploy" {
  name   = "ecs-blue-green"
  role   = aws_iam_role.codedeploy.id
  policy = data.aws_iam_policy_document.codedeploy.json
}

resource "aws_codedeploy_deployment_group" "this" {
  app_name               = aws_codedeploy_app.this.name
  deployment_group_name  = var.name
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = var.deployment_config_name

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }

  alarm_configuration {
    enabled                   = length(var.alarm_names) > 0
    alarms                    = var.alarm_names
    ignore_poll_alarm_failure = false
  }

  blue_green_deployment_config {
    deployment_ready_option {
      action_on_timeout = "CONTINUE_DEPLOYMENT" # the hook, not a person, approves
    }
    terminate_blue_instances_on_deployment_success {
      action                           = "TERMINATE"
      termination_wait_time_in_minutes = var.termination_wait_minutes
    }
  }

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  ecs_service {
    cluster_name = var.cluster_name
    service_name = var.service_name
  }

  load_balancer_info {
    target_group_pair_info {
      prod_traffic_route {
        listener_arns = [var.prod_listener_arn]
      }
      test_traffic_route {
        listener_arns = [var.test_listener_arn]
      }
      target_group {
        name = var.target_group_names["blue"]
      }
      target_group {
        name = var.target_group_names["green"]
      }
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.codedeploy]
}

# --- CodePipeline -----------------------------------------------------------------------------

resource "aws_iam_role" "pipeline" {
  name               = "${var.name}-codepipeline"
  description        = "Runs the ${var.name} release pipeline"
  assume_role_policy = data.aws_iam_policy_document.assume["codepipeline"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "pipeline" {
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetBucketVersioning"]
    resources = flatten([for b in aws_s3_bucket.this : [b.arn, "${b.arn}/*"]])
  }
  statement {
    sid       = "Build"
    actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds"]
    resources = [aws_codebuild_project.this.arn]
  }
  statement {
    sid = "Deploy"
    actions = [
      "codedeploy:CreateDeployment",
      "codedeploy:GetDeployment",
      "codedeploy:GetApplication",
      "codedeploy:GetApplicationRevision",
      "codedeploy:RegisterApplicationRevision",
      "codedeploy:GetDeploymentConfig",
    ]
    resources = [
      aws_codedeploy_app.this.arn,
      local.deployment_group_arn,
      "arn:${local.partition}:codedeploy:${local.region}:${local.account}:deploymentconfig:*",
    ]
  }
  statement {
    sid       = "RegisterTaskDefinition"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"] # no resource-level form
    resources = ["*"]
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.pass_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  dynamic "statement" {
    for_each = local.connection_arn != null ? [1] : []
    content {
      sid       = "Source"
      actions   = ["codestar-connections:UseConnection", "codeconnections:UseConnection"]
      resources = [local.connection_arn]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "pipeline"
  role   = aws_iam_role.pipeline.id
  policy = data.aws_iam_policy_document.pipeline.json
}

resource "aws_codepipeline" "this" {
  count = var.create_pipeline ? 1 : 0

  name          = var.name
  role_arn      = aws_iam_role.pipeline.arn
  pipeline_type = "V2"

  artifact_store {
    location = aws_s3_bucket.this["artifacts"].bucket
    type     = "S3"

    dynamic "encryption_key" {
      for_each = var.kms_key_arn != null ? [1] : []
      content {
        id   = var.kms_key_arn
        type = "KMS"
      }
    }
  }

  stage {
    name = "Source"

    dynamic "action" {
      for_each = var.source_type == "CodeStarSourceConnection" ? [1] : []
      content {
        name             = "Source"
        category         = "Source"
        owner            = "AWS"
        provider         = "CodeStarSourceConnection"
        version          = "1"
        output_artifacts = ["source"]
        configuration = {
          ConnectionArn        = local.connection_arn
          FullRepositoryId     = var.repository_id
          BranchName           = var.branch
          OutputArtifactFormat = "CODE_ZIP"
        }
      }
    }

    dynamic "action" {
      for_each = var.source_type == "S3" ? [1] : []
      content {
        name             = "Source"
        category         = "Source"
        owner            = "AWS"
        provider         = "S3"
        version          = "1"
        output_artifacts = ["source"]
        configuration = {
          S3Bucket             = try(aws_s3_bucket.this["source"].bucket, "")
          S3ObjectKey          = var.source_object_key
          PollForSourceChanges = "false" # start it with `aws codepipeline start-pipeline-execution`
        }
      }
    }
  }

  stage {
    name = "Build"

    action {
      name             = "TestBuildPushScan"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      input_artifacts  = ["source"]
      output_artifacts = ["build"]
      configuration = {
        ProjectName = aws_codebuild_project.this.name
      }
    }
  }

  stage {
    name = "Deploy"

    action {
      name            = "BlueGreen"
      category        = "Deploy"
      owner           = "AWS"
      provider        = "CodeDeployToECS"
      version         = "1"
      input_artifacts = ["build"]
      configuration = {
        ApplicationName                = aws_codedeploy_app.this.name
        DeploymentGroupName            = aws_codedeploy_deployment_group.this.deployment_group_name
        TaskDefinitionTemplateArtifact = "build"
        TaskDefinitionTemplatePath     = "taskdef.json"
        AppSpecTemplateArtifact        = "build"
        AppSpecTemplatePath            = "appspec.yaml"
        Image1ArtifactName             = "build"
        Image1ContainerName            = "IMAGE1_NAME"
      }
    }
  }

  tags = var.tags
}

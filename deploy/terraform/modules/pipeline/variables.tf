variable "name" {
  description = "Name prefix of the pipeline, build project, CodeDeploy application and hook function."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 characters of a-z, 0-9 and -, starting with a letter."
  }
}

# --- source -------------------------------------------------------------------------

variable "create_pipeline" {
  description = "Create the CodePipeline that ties source, build and deploy together (false: only the build project, CodeDeploy and the hooks)."
  type        = bool
  default     = true
}

variable "source_type" {
  description = "CodeStarSourceConnection (GitHub, GitLab, Bitbucket through a CodeConnections connection) or S3 (a zip of the repository uploaded to the source bucket)."
  type        = string
  default     = "CodeStarSourceConnection"

  validation {
    condition     = contains(["CodeStarSourceConnection", "S3"], var.source_type)
    error_message = "source_type must be CodeStarSourceConnection or S3."
  }
}

variable "connection_arn" {
  description = "Existing CodeConnections (CodeStar) connection; null with source_type CodeStarSourceConnection creates a GitHub connection, which must be approved once in the console."
  type        = string
  default     = null
}

variable "repository_id" {
  description = "Repository as owner/name (source_type CodeStarSourceConnection)."
  type        = string
  default     = null

  validation {
    condition     = var.repository_id == null || can(regex("^[^/]+/[^/]+$", coalesce(var.repository_id, "x")))
    error_message = "repository_id must look like owner/name."
  }

  validation {
    condition     = var.source_type != "CodeStarSourceConnection" || var.repository_id != null
    error_message = "source_type CodeStarSourceConnection needs repository_id (owner/name)."
  }
}

variable "branch" {
  description = "Branch that is released."
  type        = string
  default     = "main"
}

variable "source_object_key" {
  description = "Object key of the repository zip in the source bucket (source_type S3)."
  type        = string
  default     = "source/mcpship.zip"
}

# --- build ----------------------------------------------------------------------------

variable "buildspec_path" {
  description = "Buildspec in the repository."
  type        = string
  default     = "deploy/pipeline/buildspec.yml"
}

variable "codebuild_environment_type" {
  description = "ARM_CONTAINER (builds arm64 natively, amd64 under emulation) or LINUX_CONTAINER."
  type        = string
  default     = "ARM_CONTAINER"

  validation {
    condition     = contains(["ARM_CONTAINER", "LINUX_CONTAINER"], var.codebuild_environment_type)
    error_message = "codebuild_environment_type must be ARM_CONTAINER or LINUX_CONTAINER."
  }
}

variable "codebuild_image" {
  description = "CodeBuild image; must match codebuild_environment_type."
  type        = string
  default     = "aws/codebuild/amazonlinux-aarch64-standard:3.0"

  validation {
    condition     = length(var.codebuild_image) > 0
    error_message = "codebuild_image must not be empty."
  }
}

variable "codebuild_compute_type" {
  description = "CodeBuild compute type (Rust builds for two architectures want LARGE)."
  type        = string
  default     = "BUILD_GENERAL1_LARGE"

  validation {
    condition     = contains(["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE", "BUILD_GENERAL1_XLARGE", "BUILD_GENERAL1_2XLARGE"], var.codebuild_compute_type)
    error_message = "codebuild_compute_type must be a BUILD_GENERAL1_* size."
  }
}

variable "build_timeout_minutes" {
  description = "Build timeout."
  type        = number
  default     = 60

  validation {
    condition     = var.build_timeout_minutes >= 5 && var.build_timeout_minutes <= 480
    error_message = "build_timeout_minutes must be between 5 and 480."
  }
}

variable "fail_on_severity" {
  description = "The build fails when the image scan finds vulnerabilities of this severity (CRITICAL, HIGH)."
  type        = string
  default     = "CRITICAL"

  validation {
    condition     = contains(["CRITICAL", "HIGH"], var.fail_on_severity)
    error_message = "fail_on_severity must be CRITICAL or HIGH."
  }
}

# --- what is deployed -------------------------------------------------------------------

variable "ecr_repository_arn" {
  description = "Image repository ARN (push permissions)."
  type        = string
}

variable "ecr_repository_url" {
  description = "Image repository URL."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster."
  type        = string
}

variable "service_name" {
  description = "ECS service (deployment controller CODE_DEPLOY)."
  type        = string
}

variable "task_family" {
  description = "Task definition family; each release copies its latest revision with the new image."
  type        = string
}

variable "container_name" {
  description = "Server container name (appspec LoadBalancerInfo.ContainerName)."
  type        = string
}

variable "container_port" {
  description = "Server container port (appspec LoadBalancerInfo.ContainerPort)."
  type        = number
}

variable "pass_role_arns" {
  description = "Task execution and task role ARNs that CodePipeline and CodeDeploy may hand to ECS."
  type        = list(string)
}

variable "prod_listener_arn" {
  description = "Production listener CodeDeploy moves to the new target group."
  type        = string
}

variable "test_listener_arn" {
  description = "Test listener that reaches the new tasks before production does."
  type        = string
}

variable "target_group_names" {
  description = "Target group names by color (blue, green)."
  type        = map(string)

  validation {
    condition     = length(setsubtract(["blue", "green"], keys(var.target_group_names))) == 0
    error_message = "target_group_names needs the keys blue and green."
  }
}

variable "target_group_arns" {
  description = "Target group ARNs by color (IAM scope of CodeDeploy)."
  type        = map(string)
}

# --- release policy ------------------------------------------------------------------------

variable "deployment_config_name" {
  description = "How traffic moves: CodeDeployDefault.ECSAllAtOnce, ECSLinear10PercentEvery1Minutes, ECSCanary10Percent5Minutes, ..."
  type        = string
  default     = "CodeDeployDefault.ECSAllAtOnce"

  validation {
    condition     = startswith(var.deployment_config_name, "CodeDeployDefault.ECS") || !startswith(var.deployment_config_name, "CodeDeployDefault.")
    error_message = "deployment_config_name must be an ECS deployment configuration (CodeDeployDefault.ECS*) or a custom one."
  }
}

variable "max_stream_age_seconds" {
  description = "MCPSHIP_MAX_STREAM_AGE of the server: old tasks are kept at least this long after the traffic shift so their streams end on their own."
  type        = number
  default     = 300
}

variable "termination_wait_minutes" {
  description = "Minutes the old (blue) tasks keep running after the traffic shift: the bake time in which a rollback is instant."
  type        = number
  default     = 5

  validation {
    condition     = var.termination_wait_minutes >= 0 && var.termination_wait_minutes <= 2880
    error_message = "termination_wait_minutes must be between 0 and 2880."
  }

  validation {
    condition     = var.termination_wait_minutes * 60 >= var.max_stream_age_seconds
    error_message = "termination_wait_minutes * 60 must be at least max_stream_age_seconds, so streams on the old tasks end on their own before the tasks stop."
  }
}

variable "alarm_names" {
  description = "CloudWatch alarms that stop a release and roll it back."
  type        = list(string)
  default     = []
}

# --- pre-traffic hook ----------------------------------------------------------------------

variable "hook_zip_path" {
  description = "Zip of the smoke-hook function: a `bootstrap` executable for provided.al2023 on arm64, built by crates/mcpship-smoke-hook/package (target/lambda/mcpship-smoke-hook.zip)."
  type        = string

  validation {
    condition     = endswith(var.hook_zip_path, ".zip")
    error_message = "hook_zip_path must name a .zip file."
  }
}

variable "hook_test_url" {
  description = "MCP endpoint on the test listener that the hook smoke-tests (https://<domain>:8443/mcp)."
  type        = string

  validation {
    condition     = startswith(var.hook_test_url, "https://")
    error_message = "hook_test_url must be an https:// URL."
  }
}

variable "hook_production_url" {
  description = "Public MCP endpoint the AfterAllowTraffic hook checks once production traffic has moved."
  type        = string
}

variable "hook_environment" {
  description = "More environment variables for the hook function."
  type        = map(string)
  default     = {}
}

variable "hook_timeout_seconds" {
  description = "Timeout of the hook function."
  type        = number
  default     = 120

  validation {
    condition     = var.hook_timeout_seconds >= 10 && var.hook_timeout_seconds <= 900
    error_message = "hook_timeout_seconds must be between 10 and 900 (Lambda's limit)."
  }
}

variable "hook_reserved_concurrency" {
  description = "Reserved concurrency of each hook function (null: none). A new account's quota of 10 concurrent executions leaves nothing to reserve."
  type        = number
  default     = null

  validation {
    condition     = var.hook_reserved_concurrency == null || coalesce(var.hook_reserved_concurrency, 1) >= 1
    error_message = "hook_reserved_concurrency must be null or at least 1."
  }
}

variable "vpc_id" {
  description = "VPC of the hook function."
  type        = string
}

variable "hook_subnet_ids" {
  description = "Private subnets of the hook function (it leaves through the NAT gateways the test listener allows)."
  type        = list(string)
}

variable "test_listener_port" {
  description = "Port of the test listener (hook egress)."
  type        = number
  default     = 8443
}

# --- common -------------------------------------------------------------------------------

variable "kms_key_arn" {
  description = "KMS key for artifacts, build output, logs and the hook's environment; null uses AWS-managed keys."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the build and hook log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "force_destroy_buckets" {
  description = "Allow terraform destroy to delete the artifact and source buckets with objects in them."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

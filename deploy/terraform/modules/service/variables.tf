variable "name" {
  description = "Name of the cluster, service, task family, log group and image repository."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 characters of a-z, 0-9 and -, starting with a letter."
  }
}

# --- placement ---------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks (no public IPs are assigned)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give private subnets in at least two availability zones."
  }
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer: the only source allowed to reach the tasks."
  type        = string
}

variable "target_group_arn" {
  description = "Target group the service starts in (blue). CodeDeploy swaps it afterwards."
  type        = string
}

variable "listener_arns" {
  description = "Listeners that forward to target_group_arn. The service is created after them: ECS refuses a target group that no load balancer uses yet."
  type        = list(string)
  default     = []
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (metric dimension for request-count scaling)."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "ARN suffixes of the blue and green target groups (metric dimensions for request-count scaling)."
  type        = map(string)

  validation {
    condition     = length(setsubtract(["blue", "green"], keys(var.target_group_arn_suffixes))) == 0
    error_message = "target_group_arn_suffixes needs the keys blue and green."
  }
}

variable "egress_rules" {
  description = "Extra egress from the tasks to other security groups (Redis, PostgreSQL). HTTPS (443) to AWS APIs is always allowed."
  type = list(object({
    description       = string
    port              = number
    security_group_id = string
  }))
  default = []
}

# --- cluster and service -------------------------------------------------------

variable "container_insights" {
  description = "ECS Container Insights: enabled, enhanced (per-container metrics, costs more) or disabled."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be enabled, enhanced or disabled."
  }
}

variable "deployment_controller" {
  description = "CODE_DEPLOY (blue/green through CodeDeploy, as the pipeline module expects) or ECS (rolling; allows Service Connect)."
  type        = string
  default     = "CODE_DEPLOY"

  validation {
    condition     = contains(["CODE_DEPLOY", "ECS"], var.deployment_controller)
    error_message = "deployment_controller must be CODE_DEPLOY or ECS."
  }
}

variable "service_connect_namespace_arn" {
  description = "Cloud Map namespace for ECS Service Connect (callers inside the VPC reach the service as <name>:<port>). ECS does not support Service Connect with the CODE_DEPLOY controller, so this needs deployment_controller = ECS."
  type        = string
  default     = null

  validation {
    condition     = var.service_connect_namespace_arn == null || var.deployment_controller == "ECS"
    error_message = "Service Connect is not supported with the CODE_DEPLOY deployment controller; use deployment_controller = ECS or leave service_connect_namespace_arn null."
  }
}

variable "desired_count" {
  description = "Tasks at creation (autoscaling owns the number afterwards)."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 1
    error_message = "desired_count must be at least 1."
  }
}

variable "enable_autoscaling" {
  description = "Scale the task count on CPU and on requests per task."
  type        = bool
  default     = true
}

variable "min_capacity" {
  description = "Fewest tasks autoscaling keeps (two: one per zone)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_capacity >= 1
    error_message = "min_capacity must be at least 1."
  }
}

variable "max_capacity" {
  description = "Most tasks autoscaling starts."
  type        = number
  default     = 10

  validation {
    condition     = var.max_capacity >= var.min_capacity
    error_message = "max_capacity must be at least min_capacity."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation the service scales to hold."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target_percent >= 10 && var.cpu_target_percent <= 90
    error_message = "cpu_target_percent must be between 10 and 90."
  }
}

variable "requests_per_target" {
  description = "Requests per task per minute the service scales to hold (ALB request count per target, over both target groups); 0 turns this policy off."
  type        = number
  default     = 6000

  validation {
    condition     = var.requests_per_target >= 0
    error_message = "requests_per_target must be 0 (off) or more."
  }
}

variable "health_check_grace_period" {
  description = "Seconds after a task starts during which failed load balancer health checks do not stop it (contract: ecs.health_check_grace_period_seconds)."
  type        = number
  default     = 30

  validation {
    condition     = var.health_check_grace_period >= 0 && var.health_check_grace_period <= 2147483647
    error_message = "health_check_grace_period must not be negative."
  }
}

# --- task ----------------------------------------------------------------------

variable "image" {
  description = "Image of the first task definition revision; null: <repository url>:<image_tag>. Releases replace it through the pipeline."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag of the first image pushed to the repository (tags are immutable)."
  type        = string
  default     = "initial"
}

variable "cpu_architecture" {
  description = "ARM64 (Graviton, about 20% cheaper) or X86_64."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.cpu_architecture)
    error_message = "cpu_architecture must be ARM64 or X86_64."
  }
}

variable "task_cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Task memory in MiB (must be a valid Fargate pair with task_cpu)."
  type        = number
  default     = 512

  validation {
    condition = (
      (var.task_cpu == 256 && contains([512, 1024, 2048], var.task_memory)) ||
      (var.task_cpu == 512 && var.task_memory >= 1024 && var.task_memory <= 4096 && var.task_memory % 1024 == 0) ||
      (var.task_cpu == 1024 && var.task_memory >= 2048 && var.task_memory <= 8192 && var.task_memory % 1024 == 0) ||
      (var.task_cpu == 2048 && var.task_memory >= 4096 && var.task_memory <= 16384 && var.task_memory % 1024 == 0) ||
      (var.task_cpu >= 4096 && var.task_memory >= 8192 && var.task_memory % 1024 == 0)
    )
    error_message = "task_cpu and task_memory are not a Fargate size (256: 512/1024/2048; 512: 1024-4096; 1024: 2048-8192; ...)."
  }
}

variable "container_name" {
  description = "Name of the server container (contract: container.name; the appspec names it too)."
  type        = string
  default     = "mcpship"
}

variable "container_port" {
  description = "Port the server listens on (contract: container.port)."
  type        = number
  default     = 8080

  validation {
    condition     = var.container_port >= 1024 && var.container_port <= 65535
    error_message = "container_port must be 1024-65535: the container runs as a non-root user."
  }
}

variable "container_port_name" {
  description = "Name of the port mapping (Service Connect refers to it)."
  type        = string
  default     = "mcp"
}

variable "container_user" {
  description = "UID the server runs as (contract: container.user); never root."
  type        = string
  default     = "1001"

  validation {
    condition     = !contains(["0", "root", "0:0"], var.container_user)
    error_message = "container_user must not be root."
  }
}

variable "writable_path" {
  description = "The only writable directory (a task volume; the image declares it as a VOLUME owned by the runtime user); the root filesystem is read-only."
  type        = string
  default     = "/data"
}

variable "container_health_check" {
  description = "Container health check run by ECS inside the task (contract: ecs.container_health_check)."
  type = object({
    command              = optional(list(string), ["CMD", "/mcpship", "healthcheck"])
    interval_seconds     = optional(number, 10)
    timeout_seconds      = optional(number, 5)
    retries              = optional(number, 3)
    start_period_seconds = optional(number, 15)
  })
  default = {}

  validation {
    condition     = var.container_health_check.command[0] == "CMD" && var.container_health_check.timeout_seconds < var.container_health_check.interval_seconds
    error_message = "container_health_check.command must start with CMD (the image has no shell) and timeout must be shorter than interval."
  }
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL (contract: ecs.stop_timeout_seconds; Fargate allows at most 120)."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120
    error_message = "stop_timeout must be between 2 and 120 seconds (Fargate's limit)."
  }
}

# --- server settings (each becomes an environment variable) ---------------------

variable "allowed_hosts" {
  description = "Host names clients use (MCPSHIP_ALLOWED_HOSTS): the public name, e.g. [\"mcp.example.com\"]."
  type        = list(string)

  validation {
    condition     = length(var.allowed_hosts) > 0 && alltrue([for h in var.allowed_hosts : !strcontains(h, "/")])
    error_message = "allowed_hosts needs at least one host name, without scheme or path."
  }
}

variable "load_balancer_idle_timeout" {
  description = "Idle timeout of the load balancer in front (contract: alb.idle_timeout_seconds); the keep-alive settings below are checked against it."
  type        = number
  default     = 3600
}

variable "keep_alive_timeout_seconds" {
  description = "MCPSHIP_KEEP_ALIVE_TIMEOUT: idle keep-alive connections close after this; must outlive the load balancer's idle timeout."
  type        = number
  default     = 3660

  validation {
    condition     = var.keep_alive_timeout_seconds > var.load_balancer_idle_timeout
    error_message = "keep_alive_timeout_seconds must be longer than load_balancer_idle_timeout, or the server closes connections the ALB still uses (502s)."
  }
}

variable "sse_keep_alive_seconds" {
  description = "MCPSHIP_SSE_KEEP_ALIVE: comment interval on open SSE streams; must be shorter than the load balancer's idle timeout."
  type        = number
  default     = 15

  validation {
    condition     = var.sse_keep_alive_seconds > 0 && var.sse_keep_alive_seconds < var.load_balancer_idle_timeout
    error_message = "sse_keep_alive_seconds must be above 0 and below load_balancer_idle_timeout, or the ALB cuts quiet streams."
  }
}

variable "drain_timeout_seconds" {
  description = "MCPSHIP_DRAIN_TIMEOUT: graceful shutdown deadline after SIGTERM; must end before stop_timeout."
  type        = number
  default     = 25

  validation {
    condition     = var.drain_timeout_seconds >= 1 && var.drain_timeout_seconds < var.stop_timeout
    error_message = "drain_timeout_seconds must be at least 1 and shorter than stop_timeout, or ECS kills the task mid-drain."
  }
}

variable "max_stream_age_seconds" {
  description = "MCPSHIP_MAX_STREAM_AGE: the server ends streams older than this; clients re-open them on any replica."
  type        = number
  default     = 300

  validation {
    condition     = var.max_stream_age_seconds >= 30
    error_message = "max_stream_age_seconds must be at least 30."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the server."
  type        = string
  default     = "info"
}

variable "emf_namespace" {
  description = "MCPSHIP_EMF_NAMESPACE: CloudWatch namespace of the per-tool metrics."
  type        = string
  default     = "MCPShip"
}

variable "service_dimension" {
  description = "MCPSHIP_SERVICE_NAME: value of the Service dimension of the per-tool metrics."
  type        = string
  default     = "mcpship"
}

variable "environment" {
  description = "More environment variables for the server (override the ones above)."
  type        = map(string)
  default     = {}
}

variable "database_url_secret_arn" {
  description = "Secrets Manager secret or SSM parameter holding DATABASE_URL (postgres://...). null: SQLite on the task's writable volume, reseeded at every start."
  type        = string
  default     = null
}

variable "redis_url_secret_arn" {
  description = "Secrets Manager secret or SSM parameter holding MCPSHIP_REDIS_URL; when set, MCPSHIP_STATE=redis and replicas share sessions."
  type        = string
  default     = null
}

variable "secrets" {
  description = "More secrets for the server: variable name => Secrets Manager or SSM parameter ARN."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:[^:]+:(secretsmanager|ssm):", arn))])
    error_message = "secrets values must be Secrets Manager secret or SSM parameter ARNs."
  }
}

# --- sidecar, logs, image repository ---------------------------------------------

variable "otel_collector_enabled" {
  description = "Run the AWS Distro for OpenTelemetry collector as a sidecar; the server sends OTLP traces to it and it forwards them to X-Ray."
  type        = bool
  default     = true
}

variable "otel_collector_image" {
  description = "Image of the collector sidecar (pin a version)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"
}

variable "log_retention_days" {
  description = "Retention of the task log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "log_buffer_size" {
  description = "max-buffer-size of the non-blocking awslogs driver: logs are dropped rather than blocking the server when CloudWatch is slow."
  type        = string
  default     = "25m"

  validation {
    condition     = can(regex("^[0-9]+[kmg]$", var.log_buffer_size))
    error_message = "log_buffer_size must be a size such as 25m."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the log group, the image repository and secrets; null uses AWS-owned keys."
  type        = string
  default     = null
}

variable "ecr_keep_images" {
  description = "Images kept in the repository (older ones expire; keep enough to roll back)."
  type        = number
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 5
    error_message = "ecr_keep_images must be at least 5, so recent releases can be rolled back to."
  }
}

variable "ecr_force_delete" {
  description = "Allow terraform destroy to delete the repository with images in it."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

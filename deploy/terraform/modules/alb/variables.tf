variable "name" {
  description = "Name prefix (target group names add -blue/-green, so at most 26 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,24}[a-z0-9]$", var.name))
    error_message = "name must be 3-26 characters of a-z, 0-9 and -, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the load balancer and its target groups."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the load balancer (public subnets for an internet-facing one), in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An application load balancer needs subnets in at least two availability zones."
  }
}

variable "internal" {
  description = "Internal (VPC-only) load balancer instead of an internet-facing one."
  type        = bool
  default     = false
}

variable "ingress_cidrs" {
  description = "IPv4 ranges allowed to reach the HTTPS (and the redirecting HTTP) listener."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "ingress_cidrs must be IPv4 CIDR blocks."
  }
}

variable "test_listener_cidrs" {
  description = "IPv4 ranges allowed to reach the test listener, where CodeDeploy exposes the new (green) tasks before they take traffic. Give the NAT gateway addresses the deployment hook leaves from; never the world."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.test_listener_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "test_listener_cidrs must be IPv4 CIDR blocks, and not 0.0.0.0/0: the test listener serves releases nobody has approved yet."
  }
}

variable "container_port" {
  description = "Port the tasks listen on (contract: container.port)."
  type        = number
  default     = 8080

  validation {
    condition     = var.container_port >= 1024 && var.container_port <= 65535
    error_message = "container_port must be an unprivileged port (1024-65535): the container runs as a non-root user."
  }
}

variable "idle_timeout" {
  description = "Seconds a connection may carry no bytes before the ALB closes it (contract: alb.idle_timeout_seconds). The server's keep-alive timeout must be longer and its SSE keep-alive interval shorter."
  type        = number
  default     = 3600

  validation {
    condition     = var.idle_timeout >= 60 && var.idle_timeout <= 4000
    error_message = "idle_timeout must be between 60 and 4000 seconds (the ALB's maximum); streams need more than the 60 s default."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listeners: TLS 1.3 with TLS 1.2 fallback, no legacy ciphers."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = startswith(var.ssl_policy, "ELBSecurityPolicy-TLS13-1-2-") || startswith(var.ssl_policy, "ELBSecurityPolicy-TLS13-1-3-")
    error_message = "ssl_policy must be a TLS 1.3 policy with at least TLS 1.2 (ELBSecurityPolicy-TLS13-1-2-* or -1-3-*)."
  }
}

variable "domain_name" {
  description = "Public name of the service (mcp.example.com): the certificate's name and the alias record."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,}$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS name such as mcp.example.com."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of domain_name: certificate validation records and the alias record go there. null: manage DNS yourself (then pass certificate_arn)."
  type        = string
  default     = null
}

variable "create_alias_record" {
  description = "Create an A (alias) record for domain_name in route53_zone_id pointing at the load balancer."
  type        = bool
  default     = true

  validation {
    condition     = !var.create_alias_record || var.route53_zone_id != null
    error_message = "create_alias_record needs route53_zone_id."
  }
}

variable "certificate_arn" {
  description = "Existing ACM certificate for domain_name. null: request one with DNS validation in route53_zone_id."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn != null || var.route53_zone_id != null
    error_message = "Give certificate_arn, or route53_zone_id so a certificate can be requested and validated."
  }
}

variable "health_check" {
  description = "Target group health check (contract: target_group.health_check). The path is the readiness route, which turns 503 the moment a task starts draining."
  type = object({
    path                = optional(string, "/ready")
    matcher             = optional(string, "200")
    interval_seconds    = optional(number, 10)
    timeout_seconds     = optional(number, 5)
    healthy_threshold   = optional(number, 2)
    unhealthy_threshold = optional(number, 3)
  })
  default = {}

  validation {
    condition     = startswith(var.health_check.path, "/") && var.health_check.path != "/mcp"
    error_message = "health_check.path must be a path such as /ready; /mcp checks Host and would answer 403 to the ALB."
  }

  validation {
    condition     = var.health_check.timeout_seconds < var.health_check.interval_seconds && var.health_check.interval_seconds >= 5 && var.health_check.interval_seconds <= 300
    error_message = "health_check.interval_seconds must be 5-300 and longer than timeout_seconds."
  }

  validation {
    condition     = var.health_check.healthy_threshold >= 2 && var.health_check.healthy_threshold <= 10 && var.health_check.unhealthy_threshold >= 2 && var.health_check.unhealthy_threshold <= 10
    error_message = "health check thresholds must be between 2 and 10."
  }
}

variable "deregistration_delay" {
  description = "Seconds the ALB lets a deregistered target finish open requests before ECS stops it (contract: target_group.deregistration_delay_seconds)."
  type        = number
  default     = 30

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "deregistration_delay must be between 0 and 3600 seconds."
  }
}

variable "slow_start" {
  description = "Seconds a new target's share of requests ramps up over (0 disables; otherwise 30-900). Works with round_robin only."
  type        = number
  default     = 30

  validation {
    condition     = var.slow_start == 0 || (var.slow_start >= 30 && var.slow_start <= 900)
    error_message = "slow_start must be 0 or 30-900 seconds."
  }
}

variable "load_balancing_algorithm" {
  description = "round_robin or least_outstanding_requests (the ALB refuses slow start with the latter)."
  type        = string
  default     = "round_robin"

  validation {
    condition     = contains(["round_robin", "least_outstanding_requests"], var.load_balancing_algorithm)
    error_message = "load_balancing_algorithm must be round_robin or least_outstanding_requests."
  }

  validation {
    condition     = var.load_balancing_algorithm == "round_robin" || var.slow_start == 0
    error_message = "The ALB allows slow start only with round_robin: set slow_start = 0 to use least_outstanding_requests."
  }
}

variable "stickiness_enabled" {
  description = "ALB cookie stickiness. Keep it off: most MCP clients keep no cookies; legacy sessions are shared through the state backend instead."
  type        = bool
  default     = false
}

variable "enable_deletion_protection" {
  description = "Refuse to delete the load balancer until this is turned off."
  type        = bool
  default     = true
}

variable "access_logs_bucket_name" {
  description = "Name of the S3 bucket created for access logs; null: <name>-alb-logs-<account id>."
  type        = string
  default     = null
}

variable "access_logs_retention_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.access_logs_retention_days >= 1
    error_message = "access_logs_retention_days must be at least 1."
  }
}

variable "force_destroy_access_logs" {
  description = "Allow terraform destroy to delete the access log bucket with its logs in it."
  type        = bool
  default     = false
}

variable "waf_web_acl_arn" {
  description = "WAFv2 web ACL to associate with the load balancer (null: none)."
  type        = string
  default     = null
}

variable "https_port" {
  description = "Port of the production HTTPS listener."
  type        = number
  default     = 443
}

variable "test_listener_port" {
  description = "Port of the HTTPS test listener CodeDeploy points at the new tasks during a release (contract: alb.test_listener_port)."
  type        = number
  default     = 8443

  validation {
    condition     = var.test_listener_port != 443 && var.test_listener_port != 80
    error_message = "test_listener_port must differ from the production ports 443 and 80."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

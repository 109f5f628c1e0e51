variable "name" {
  description = "Name prefix of alarms, the dashboard, queries and the alarm topic."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 characters of a-z, 0-9 and -, starting with a letter."
  }
}

variable "log_group_name" {
  description = "Log group of the tasks (JSON logs with the tool events and access log lines)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (LoadBalancer dimension)."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "ARN suffixes of the blue and green target groups (TargetGroup dimension)."
  type        = map(string)
}

variable "cluster_name" {
  description = "ECS cluster name (ClusterName dimension)."
  type        = string
}

variable "service_name" {
  description = "ECS service name (ServiceName dimension)."
  type        = string
}

variable "emf_namespace" {
  description = "CloudWatch namespace the server writes per-tool metrics to (MCPSHIP_EMF_NAMESPACE)."
  type        = string
  default     = "MCPShip"

  validation {
    condition     = length(var.emf_namespace) > 0 && !startswith(var.emf_namespace, "AWS/")
    error_message = "emf_namespace must not be empty and must not start with AWS/ (reserved)."
  }
}

variable "service_dimension" {
  description = "Value of the Service dimension of the per-tool metrics (MCPSHIP_SERVICE_NAME)."
  type        = string
  default     = "mcpship"
}

variable "alarmed_tools" {
  description = "Tools that get an error-rate and a p99-latency alarm each (CloudWatch alarms need the Tool dimension's value; the dashboard shows every tool)."
  type        = list(string)
  default     = ["search_documents", "get_document"]
}

variable "alb_5xx_rate_percent" {
  description = "Alarm when 5XX answers (from the ALB and the tasks) exceed this share of requests for 3 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.alb_5xx_rate_percent > 0 && var.alb_5xx_rate_percent <= 100
    error_message = "alb_5xx_rate_percent must be in (0, 100]."
  }
}

variable "min_requests_per_minute" {
  description = "Below this many requests a minute the error-rate alarms stay OK (one failed probe is not an outage)."
  type        = number
  default     = 20
}

variable "p99_response_time_seconds" {
  description = "Alarm when the ALB's p99 TargetResponseTime (time to the response head) exceeds this for 3 minutes."
  type        = number
  default     = 2
}

variable "tool_error_rate_percent" {
  description = "Alarm when a tool's ToolErrors/ToolCalls exceeds this percentage for 3 minutes."
  type        = number
  default     = 10
}

variable "tool_p99_ms" {
  description = "Alarm when a tool's p99 ToolDuration exceeds this many milliseconds for 3 minutes."
  type        = number
  default     = 2000
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic (confirm the subscription mail); null: none."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key of the alarm topic; its key policy must let cloudwatch.amazonaws.com use it (the AWS-managed SNS key does not)."
  type        = string
  default     = null
}

variable "enable_query_definitions" {
  description = "Save the Logs Insights queries in the console (aws_cloudwatch_query_definition)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the deployment (prefix of every resource)."
  type        = string
  default     = "mcpship"
}

variable "availability_zones" {
  description = "Two or three zones of the region."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

variable "domain_name" {
  description = "Public name of the MCP endpoint (https://<domain_name>/mcp)."
  type        = string
}

variable "route53_zone_id" {
  description = "Hosted zone that holds domain_name (certificate validation and the alias record). null with create_hosted_zone = false: bring certificate_arn and manage DNS yourself."
  type        = string
  default     = null
}

variable "create_hosted_zone" {
  description = "Create a hosted zone for domain_name itself (delegate it from the parent zone afterwards)."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "Existing ACM certificate for domain_name (null: request one)."
  type        = string
  default     = null
}

variable "nat_gateway_mode" {
  description = "single, one_per_az or none (see the network module)."
  type        = string
  default     = "single"
}

variable "interface_endpoints" {
  description = "Interface VPC endpoints of the private subnets."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "xray"]
}

variable "enable_redis" {
  description = "Shared state in ElastiCache (MCPSHIP_STATE=redis): needed for more than one replica to share legacy sessions and stream resumption."
  type        = bool
  default     = true
}

variable "redis_auth_token" {
  description = "AUTH token of the cache (null: security group only)."
  type        = string
  default     = null
  sensitive   = true
}

variable "database_url_secret_arn" {
  description = "Secret holding DATABASE_URL (PostgreSQL); null: SQLite inside each task."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag of the first image pushed to the repository."
  type        = string
  default     = "initial"
}

variable "desired_count" {
  description = "Tasks at creation."
  type        = number
  default     = 2
}

variable "enable_autoscaling" {
  description = "Scale the task count on CPU and requests per task."
  type        = bool
  default     = true
}

variable "max_capacity" {
  description = "Most tasks autoscaling starts."
  type        = number
  default     = 10
}

variable "enable_deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "create_pipeline" {
  description = "Create the CodePipeline (false: build project, CodeDeploy and hooks only)."
  type        = bool
  default     = true
}

variable "pipeline_source_type" {
  description = "CodeStarSourceConnection or S3."
  type        = string
  default     = "CodeStarSourceConnection"
}

variable "connection_arn" {
  description = "Existing CodeConnections connection (null: create one)."
  type        = string
  default     = null
}

variable "repository_id" {
  description = "owner/name of the repository the pipeline releases."
  type        = string
  default     = null
}

variable "branch" {
  description = "Branch the pipeline releases."
  type        = string
  default     = "main"
}

variable "hook_zip_path" {
  description = "Zip of the smoke-hook function; null: target/lambda/mcpship-smoke-hook.zip in this repository (built by crates/mcpship-smoke-hook/package)."
  type        = string
  default     = null
}

variable "alarm_email" {
  description = "Address that receives alarm notifications (null: none)."
  type        = string
  default     = null
}

variable "alarmed_tools" {
  description = "Tools with per-tool alarms."
  type        = list(string)
  default     = ["search_documents", "get_document"]
}

variable "enable_query_definitions" {
  description = "Save the Logs Insights queries."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name prefix of the replication group, subnet group, security group and secret."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 characters of a-z, 0-9 and -, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache nodes, in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give subnets in at least two availability zones (the replica lives in the other one)."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect (the tasks)."
  type        = list(string)

  validation {
    condition     = length(var.client_security_group_ids) > 0
    error_message = "Name at least one client security group; nothing else may reach the cache."
  }
}

variable "engine" {
  description = "valkey (Redis-compatible, cheaper per node hour) or redis."
  type        = string
  default     = "valkey"

  validation {
    condition     = contains(["valkey", "redis"], var.engine)
    error_message = "engine must be valkey or redis."
  }
}

variable "engine_version" {
  description = "Engine version (valkey 8.0 / redis 7.1)."
  type        = string
  default     = "8.0"
}

variable "node_type" {
  description = "Cache node type; the state held is small (sessions, stream event logs, counters)."
  type        = string
  default     = "cache.t4g.micro"

  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache node type such as cache.t4g.micro."
  }
}

variable "replicas" {
  description = "Read replicas besides the primary, in other zones; at least 1, so a zone outage fails over instead of losing every session."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 5
    error_message = "replicas must be between 1 and 5 (multi-AZ failover needs a replica)."
  }
}

variable "port" {
  description = "Port of the cache."
  type        = number
  default     = 6379
}

variable "auth_token" {
  description = "AUTH token (16-128 printable characters) required from clients; null relies on the security group alone. It ends up in the URL secret and in Terraform state."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.auth_token == null || (length(coalesce(var.auth_token, "x")) >= 16 && length(coalesce(var.auth_token, "x")) <= 128 && !can(regex("[@\"/ ]", coalesce(var.auth_token, "x"))))
    error_message = "auth_token must be 16 to 128 printable characters other than @, \", / and space."
  }
}

variable "snapshot_retention_days" {
  description = "Daily snapshots kept (0: none; the state is rebuildable, sessions would only be lost)."
  type        = number
  default     = 1
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest and for the URL secret; null uses AWS-managed keys."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

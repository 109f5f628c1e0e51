variable "name" {
  description = "Name prefix of every resource (lower case letters, digits, hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 characters of a-z, 0-9 and -, starting with a letter."
  }
}

variable "create_vpc" {
  description = "Create a VPC with public and private subnets. false: bring your own and pass the existing_* ids."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR block of the new VPC (create_vpc = true)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones to spread subnets over (two or three, e.g. [\"us-east-1a\", \"us-east-1b\"])."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3)
    error_message = "Give two or three availability zones: an ALB needs two, and Fargate spreads tasks over them."
  }

  validation {
    condition     = length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must not repeat a zone."
  }
}

variable "nat_gateway_mode" {
  description = "NAT gateways for the private subnets: \"single\" (cheapest), \"one_per_az\" (survives a zone outage) or \"none\" (private subnets reach AWS only through VPC endpoints)."
  type        = string
  default     = "single"

  validation {
    condition     = contains(["single", "one_per_az", "none"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be single, one_per_az or none."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints from the private subnets, so image pulls, logs, secrets and traces never leave the VPC. Each costs about $7.30 a month per zone."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "xray"]

  validation {
    condition = alltrue([for s in var.interface_endpoints : contains(
      ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "xray", "kms", "sts", "monitoring", "elasticloadbalancing", "codedeploy"], s
    )])
    error_message = "interface_endpoints may name ecr.api, ecr.dkr, logs, secretsmanager, ssm, xray, kms, sts, monitoring, elasticloadbalancing or codedeploy."
  }
}

variable "enable_s3_gateway_endpoint" {
  description = "Add the (free) S3 gateway endpoint to the private route tables: ECR stores image layers in S3."
  type        = bool
  default     = true
}

variable "enable_flow_logs" {
  description = "Send VPC flow logs (rejected and accepted traffic) to CloudWatch Logs."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Retention of the flow log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the flow log group; null uses CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "existing_vpc_id" {
  description = "VPC to use when create_vpc = false."
  type        = string
  default     = null
}

variable "existing_vpc_cidr" {
  description = "CIDR block of existing_vpc_id (security group rules for the endpoints)."
  type        = string
  default     = null
}

variable "existing_public_subnet_ids" {
  description = "Public subnets (for the ALB) when create_vpc = false."
  type        = list(string)
  default     = []
}

variable "existing_private_subnet_ids" {
  description = "Private subnets (for tasks, Redis, the hook function) when create_vpc = false."
  type        = list(string)
  default     = []
}

variable "existing_private_route_table_ids" {
  description = "Route tables of the existing private subnets (for the S3 gateway endpoint)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

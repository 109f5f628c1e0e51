output "vpc_id" {
  description = "VPC id."
  value       = local.vpc_id
}

output "vpc_cidr" {
  description = "VPC CIDR block."
  value       = local.vpc_cidr
}

output "public_subnet_ids" {
  description = "Public subnets (ALB)."
  value       = local.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Private subnets (tasks, Redis, hook function)."
  value       = local.private_subnet_ids
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets."
  value       = local.private_route_ids
}

output "nat_public_ips" {
  description = "Public addresses private subnets leave from (allow them on the ALB test listener)."
  value       = aws_eip.nat[*].public_ip
}

output "interface_endpoint_ids" {
  description = "Interface endpoint ids by service."
  value       = { for k, v in aws_vpc_endpoint.interface : k => v.id }
}

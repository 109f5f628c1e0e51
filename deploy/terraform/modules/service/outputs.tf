output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "Task definition revision Terraform registered."
  value       = aws_ecs_task_definition.this.arn
}

output "task_family" {
  description = "Task definition family (the pipeline copies its latest revision with the new image)."
  value       = aws_ecs_task_definition.this.family
}

output "container_name" {
  description = "Name of the server container."
  value       = var.container_name
}

output "container_port" {
  description = "Port of the server container."
  value       = var.container_port
}

output "container_definitions" {
  description = "The container definitions as registered (JSON)."
  value       = aws_ecs_task_definition.this.container_definitions
}

output "execution_role_arn" {
  description = "Task execution role (ECS agent)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "Task role (the server)."
  value       = aws_iam_role.task.arn
}

output "security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.tasks.id
}

output "log_group_name" {
  description = "Log group of the tasks (JSON logs and EMF metrics)."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "Log group ARN."
  value       = aws_cloudwatch_log_group.this.arn
}

output "repository_url" {
  description = "ECR repository URL (push images here)."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "ECR repository ARN."
  value       = aws_ecr_repository.this.arn
}

output "repository_name" {
  description = "ECR repository name."
  value       = aws_ecr_repository.this.name
}

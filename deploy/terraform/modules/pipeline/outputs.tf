output "pipeline_name" {
  description = "CodePipeline name."
  value       = try(aws_codepipeline.this[0].name, null)
}

output "codebuild_project_name" {
  description = "CodeBuild project name."
  value       = aws_codebuild_project.this.name
}

output "codedeploy_app_name" {
  description = "CodeDeploy application."
  value       = aws_codedeploy_app.this.name
}

output "deployment_group_name" {
  description = "CodeDeploy deployment group."
  value       = aws_codedeploy_deployment_group.this.deployment_group_name
}

output "hook_function_names" {
  description = "Hook functions by lifecycle event (the appspec names them)."
  value       = { for k, f in aws_lambda_function.hook : k => f.function_name }
}

output "artifact_bucket" {
  description = "Pipeline artifact bucket."
  value       = aws_s3_bucket.this["artifacts"].bucket
}

output "source_bucket" {
  description = "Source bucket (source_type S3), else null."
  value       = try(aws_s3_bucket.this["source"].bucket, null)
}

output "connection_arn" {
  description = "Source connection (approve it once in the console if it was created here)."
  value       = local.connection_arn
}

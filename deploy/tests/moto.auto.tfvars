# Settings of the example for the moto run in scripts/check-deploy. Each
# difference from a real deployment is a resource moto cannot create:
#   enable_query_definitions = false  moto has no CloudWatch Logs query definitions API
#   pipeline_source_type     = "S3"   moto has no CodeStar/CodeConnections API
#   enable_autoscaling       = false  moto's Application Auto Scaling has no ListTagsForResource,
#                                     which the provider calls after creating a scalable target
#   create_pipeline          = false  moto's CodePipeline GetPipeline returns timestamps as strings,
#                                     which the provider's SDK cannot decode
#   enable_redis             = false  moto's ElastiCache creates a replication group without its
#                                     member clusters, which the provider reads back
# One shim, moto_shims.tf (written into the scratch copy of modules/pipeline):
# moto insists on source and artifacts locations for a CODEPIPELINE CodeBuild project, which
# AWS ignores for that source type.
domain_name              = "mcp.example.test"
create_hosted_zone       = true
repository_id            = null
pipeline_source_type     = "S3"
enable_query_definitions = false
alarm_email              = "alarms@example.test"
enable_autoscaling       = false
enable_redis             = false
create_pipeline          = false

# Written into the scratch copy of modules/pipeline for the moto run only.
# moto's CodeBuild requires source.location and artifacts.location even for
# type CODEPIPELINE; AWS takes both from the pipeline for that type, so the
# kit does not set them.
resource "aws_codebuild_project" "this" {
  source {
    type      = "CODEPIPELINE"
    location  = "codepipeline"
    buildspec = var.buildspec_path
  }

  artifacts {
    type     = "CODEPIPELINE"
    location = "codepipeline"
  }
}

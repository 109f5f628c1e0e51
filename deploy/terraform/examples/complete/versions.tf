terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Keep state in S3 (see docs/deploy-aws.md, "Bootstrap"): copy
  # backend.tf.example to backend.tf and fill in the bucket.
}

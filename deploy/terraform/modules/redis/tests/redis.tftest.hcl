# Shared state cache, against a mocked provider.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name                      = "mcpship"
  vpc_id                    = "vpc-0123456789abcdef0"
  subnet_ids                = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  client_security_group_ids = ["sg-0123456789abcdef0"]
}

run "encrypted_and_reachable_only_from_the_tasks" {
  command = apply

  assert {
    condition     = aws_elasticache_replication_group.this.transit_encryption_enabled && aws_elasticache_replication_group.this.at_rest_encryption_enabled && aws_elasticache_replication_group.this.automatic_failover_enabled
    error_message = "Cache must encrypt in transit and at rest and fail over across zones."
  }

  assert {
    condition     = aws_secretsmanager_secret_version.url.secret_string == "rediss://mcpship-state.abc123.ng.0001.use1.cache.amazonaws.com:6379"
    error_message = "MCPSHIP_REDIS_URL must be a rediss:// (TLS) URL to the primary endpoint."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.clients) == 1 && aws_vpc_security_group_ingress_rule.clients[0].referenced_security_group_id == "sg-0123456789abcdef0"
    error_message = "Only the client security group may connect."
  }
}

run "auth_token_goes_into_the_url" {
  command = apply
  variables {
    auth_token = "0123456789abcdef+=!"
  }
  assert {
    condition     = startswith(aws_secretsmanager_secret_version.url.secret_string, "rediss://:0123456789abcdef%2B%3D%21@")
    error_message = "The AUTH token must be URL-encoded into the secret URL."
  }
}

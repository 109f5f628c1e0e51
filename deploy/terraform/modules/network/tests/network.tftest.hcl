# VPC layout and endpoints, against a mocked provider.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name               = "mcpship"
  availability_zones = ["us-east-1a", "us-east-1b"]
}

run "private_subnets_reach_aws_through_endpoints" {
  command = apply

  assert {
    condition     = length(aws_subnet.private) == 2 && length(aws_subnet.public) == 2 && alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "Two public and two private subnets, no automatic public IPs."
  }

  assert {
    condition     = toset(keys(aws_vpc_endpoint.interface)) == toset(["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "xray"]) && alltrue([for e in aws_vpc_endpoint.interface : e.private_dns_enabled])
    error_message = "Interface endpoints for ECR, logs, secrets, SSM and X-Ray, with private DNS."
  }

  assert {
    condition     = aws_vpc_endpoint.s3[0].vpc_endpoint_type == "Gateway" && length(aws_nat_gateway.this) == 1
    error_message = "S3 gateway endpoint and one NAT gateway by default."
  }

  assert {
    condition     = aws_flow_log.this[0].traffic_type == "ALL" && length(aws_default_security_group.this) == 1
    error_message = "Flow logs on, default security group stripped."
  }
}

run "one_nat_gateway_per_zone" {
  command = apply
  variables {
    nat_gateway_mode = "one_per_az"
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 2 && length(aws_route.private_nat) == 2
    error_message = "one_per_az needs a NAT gateway and a route in each zone."
  }
}

run "one_zone_is_refused" {
  command = plan
  variables {
    availability_zones = ["us-east-1a"]
  }
  expect_failures = [var.availability_zones]
}

# The complete example with a mocked AWS provider (no account, no network):
# the contract's values reach every module and the pieces fit together.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  domain_name     = "mcp.example.test"
  route53_zone_id = "Z0000000000000000TEST"
  repository_id   = "example/mcpship"
  hook_zip_path   = "../../tests/fixtures/hook.zip"
}

run "complete_stack" {
  command = apply

  assert {
    condition     = [for c in jsondecode(module.service.container_definitions) : c if c.name == jsondecode(file("../../../contract.json")).container.name][0].stopTimeout == jsondecode(file("../../../contract.json")).ecs.stop_timeout_seconds
    error_message = "The task's stopTimeout must come from the contract."
  }

  assert {
    condition     = alltrue([for c in jsondecode(module.service.container_definitions) : c.readonlyRootFilesystem])
    error_message = "Every container must have a read-only root filesystem."
  }

  assert {
    condition = (
      [for e in [for c in jsondecode(module.service.container_definitions) : c if c.name == "mcpship"][0].environment : e.value if e.name == "MCPSHIP_ALLOWED_HOSTS"] == ["mcp.example.test"] &&
      [for e in [for c in jsondecode(module.service.container_definitions) : c if c.name == "mcpship"][0].environment : e.value if e.name == "MCPSHIP_STATE"] == ["redis"]
    )
    error_message = "The public name must be an allowed Host, and Redis state must be on."
  }

  assert {
    condition     = module.service.container_port == yamldecode(file("../../../pipeline/appspec.yaml")).Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort && module.service.container_name == yamldecode(file("../../../pipeline/appspec.yaml")).Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerName
    error_message = "The appspec must name the task's container and port."
  }

  assert {
    condition     = module.pipeline.hook_function_names == { for h in yamldecode(file("../../../pipeline/appspec.yaml")).Hooks : keys(h)[0] => values(h)[0] }
    error_message = "The appspec's hooks must be the functions the pipeline module creates."
  }

  assert {
    condition     = length(output.alarm_names) == 8 && output.url == "https://mcp.example.test/mcp"
    error_message = "Eight alarms (5XX, p99, unhealthy blue/green, two per alarmed tool) and the public URL."
  }
}

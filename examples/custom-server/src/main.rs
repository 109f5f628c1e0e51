//! A team's own MCP server on the mcpship runtime.
//!
//! The tools are ordinary rmcp: a `#[tool_router]` impl and a
//! `#[tool_handler]` `ServerHandler`. Hosting them with health and readiness
//! routes, Host/Origin checks, limits, draining, JSON logs and tool events is
//! the few lines in `main`.

use clap::Parser;
use rmcp::{
    Json, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct ConvertArgs {
    /// Temperature in degrees Celsius.
    celsius: f64,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct Converted {
    fahrenheit: f64,
    kelvin: f64,
}

/// The server's state: cheap to clone, since the runtime makes a handler per
/// stateless request.
#[derive(Clone)]
struct Thermometer {
    tool_router: std::sync::Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Thermometer {
    fn new() -> Self {
        Self {
            tool_router: std::sync::Arc::new(Self::tool_router()),
        }
    }

    /// Convert a temperature from Celsius to Fahrenheit and Kelvin.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn convert_temperature(
        &self,
        Parameters(ConvertArgs { celsius }): Parameters<ConvertArgs>,
    ) -> Result<Json<Converted>, String> {
        if celsius < -273.15 {
            return Err(format!("{celsius} °C is below absolute zero (-273.15 °C)"));
        }
        Ok(Json(Converted {
            fahrenheit: celsius * 9.0 / 5.0 + 32.0,
            kelvin: celsius + 273.15,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Thermometer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Same flags and environment as `mcpship serve` (PORT, HOST, MCPSHIP_*).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: mcpship::ServeConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { config } = Args::parse();
    if let Err(errors) = config.validate() {
        for e in errors {
            eprintln!("error: {e}");
        }
        std::process::exit(64);
    }
    // Logs, and traces when MCPSHIP_TRACES_EXPORTER says where to.
    let telemetry = mcpship::telemetry::init(&config)?;
    let server = Thermometer::new();
    let result = mcpship::Server::new(config, move || server.clone())
        .run_until_signal()
        .await;
    telemetry.shutdown().await;
    result
}

//! `mcpship`: a production MCP server for document search, and the operator
//! commands around it.
//!
//! Exit codes: 0 success; 1 a check failed (smoke, healthcheck) or the
//! server stopped on an error; 64 bad configuration (nothing was started).

mod cli;
mod ingest_cmd;

use std::process::ExitCode;

use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(cli.run());
    // Log lines still buffered (the server's last words) reach stderr.
    mcpship::telemetry::log_sink::flush_global();
    code
}

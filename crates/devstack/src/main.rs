//! Developer tooling for the Omie → Espresso sync: mint dev tokens and drive the demo of
//! `make run` against running `ingress` and `projector` services.

mod api;
mod demo;
mod manifest;
mod omie;
mod summary;
mod tenants;
mod token;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use omie_sync_platform::auth::{DEV_JWT_SECRET, JwtKeys};
use omie_sync_platform::config::{check_jwt_secret, secret};
use secrecy::SecretString;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// HS256 secret the services verify tokens with; must match theirs.
    #[arg(long, global = true, env = "AUTH_JWT_SECRET", hide_env_values = true, hide_default_value = true,
          default_value = DEV_JWT_SECRET, value_parser = secret)]
    jwt_secret: SecretString,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a bearer token (one line) for the admin API and the reads.
    Token(token::TokenArgs),
    /// Configure three demo tenants, sync the first from omie-sim, replay the fixtures, stream
    /// generated webhooks and live changes, and summarise what the projector made of them.
    Demo(demo::DemoArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(code) => code,
        Err(error) => {
            // One line with the whole cause chain; a backtrace helps nobody running the demo.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<ExitCode> {
    check_jwt_secret(&cli.jwt_secret)?;
    let keys = JwtKeys::new(&cli.jwt_secret);
    match &cli.command {
        Command::Token(args) => {
            println!("{}", token::mint(&keys, args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            let all_matched = demo::run(args, &keys).await?;
            Ok(if all_matched { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

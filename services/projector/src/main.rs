use clap::{Parser, Subcommand};
use projector::{Application, ProjectorConfig};

/// Folds the Omie sync event log into PostgreSQL and serves reads.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations, then exit.
    Migrate {
        #[arg(
            long,
            env = "DATABASE_URL",
            value_name = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/omie_sync_dev"
        )]
        database_url: String,
    },
    /// Consume the event log and serve the read API until Ctrl-C.
    Run(ProjectorConfig),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    omie_sync_platform::logging::init();
    match Cli::parse().command {
        Command::Migrate { database_url } => {
            let applied = omie_sync_store::migrate(&database_url)?;
            tracing::info!(applied, "migrations up to date");
        }
        Command::Run(config) => {
            let app = Application::build(config, true).await?;
            tracing::info!(port = app.port(), "projector serving");
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}

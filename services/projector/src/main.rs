use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use projector::dlq::{self, DlqArgs};
use projector::replay::{self, ReplayArgs};
use projector::{Application, ProjectorConfig};

/// Folds the Omie sync event log into PostgreSQL and serves reads.
/// The fold allocates and frees many small JSON values per event; the system allocator spent
/// about a third of a replay's CPU on that (`BENCHMARKS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Rebuild the projections from the event log aside, then swap them in (all tenants or one);
    /// `--dry-run` reports what would change, `--until` keeps a past state aside.
    Replay(ReplayArgs),
    /// Dead letters: records this projector cannot decode (`list`, `show`, `redrive`).
    Dlq(DlqArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = omie_sync_platform::telemetry::init("projector");
    match run(Cli::parse().command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            // 2, so a dry run's "differences found" (1) stays distinguishable from a failure.
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate { database_url } => {
            let applied = omie_sync_store::migrate(&database_url)?;
            tracing::info!(applied, "migrations up to date");
        }
        Command::Run(config) => {
            let app = Application::build(config, true).await?;
            tracing::info!(port = app.port(), "projector serving");
            app.run_until_stopped().await?;
        }
        Command::Dlq(args) => print!("{}", dlq::run(&args).await?),
        Command::Replay(args) => {
            let report = replay::run_until_interrupted(&args, stop_signal()?).await?;
            print!("{}", report.render());
            if args.dry_run && report.differences() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM, named. Listening starts at once, so a signal that arrives before the
/// replay looks is not lost (nor does it kill the process before its cleanup).
fn stop_signal() -> anyhow::Result<impl Future<Output = String>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "Ctrl-C".to_owned(),
            _ = terminate.recv() => "SIGTERM".to_owned(),
        }
    })
}

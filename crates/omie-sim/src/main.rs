//! `omie-sim`: serves a generated company on Omie's API, with the control API beside it.

use std::net::TcpListener;

use clap::Parser;
use omie_sim::generator::{self, CompanySpec, EmailTruth};
use omie_sim::{Faults, Simulator};

#[derive(Debug, Parser)]
#[command(
    about = "A local stand-in for Omie: a generated company on the clientes API, a control API and a webhook sender"
)]
struct Args {
    #[arg(long, env = "OMIE_SIM_HOST", default_value = "127.0.0.1")]
    host: String,
    /// 0 picks a free port; the URL is printed either way.
    #[arg(long, env = "OMIE_SIM_PORT", default_value_t = 8090)]
    port: u16,
    /// Records in the generated company.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    records: u32,
    /// The same seed makes the same company and the same live changes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The company's short name: its e-mail domain and webhook `appHash` derive from it.
    #[arg(long, default_value = "aurora")]
    company: String,
    #[arg(long, env = "OMIE_SIM_APP_KEY", default_value = "3188245610231")]
    app_key: String,
    #[arg(long, env = "OMIE_SIM_APP_SECRET", default_value = "omie-sim-secret-aurora")]
    app_secret: String,
    /// The integration's tag, carried in varying case by most records.
    #[arg(long, default_value = "Espresso")]
    tag: String,
    /// Added to every API answer, to make syncs take a visible while.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let spec = CompanySpec { slug: &args.company, app_key: &args.app_key, tag: &args.tag };
    let generated = generator::company(&spec, &args.app_secret, args.records as usize, args.seed);
    let truths = generated.truths.values();
    let tagged = truths.clone().filter(|truth| truth.tagged && !truth.inactive).count();
    let unusable = truths
        .clone()
        .filter(|truth| truth.tagged && !truth.inactive && !matches!(truth.email, EmailTruth::Usable(_)))
        .count();
    let inactive = truths.filter(|truth| truth.inactive).count();

    let simulator = Simulator::generated(generated, args.seed);
    simulator.set_faults(Faults { latency_ms: args.latency_ms, ..Faults::default() });
    let listener = TcpListener::bind((args.host.as_str(), args.port))?;
    let address = listener.local_addr()?;
    println!(
        "omie-sim: {} records of {} ({tagged} tagged and active, {unusable} of them without a usable e-mail; \
         {inactive} inactive) on http://{address} — app key {}",
        args.records, args.company, args.app_key
    );
    let server = simulator.serve(listener)?;
    let handle = server.handle();
    tokio::select! {
        served = server => served,
        _ = tokio::signal::ctrl_c() => {
            handle.stop(true).await;
            Ok(())
        }
    }
}

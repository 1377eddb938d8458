use clap::Parser;
use ingress::{Application, IngressConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = omie_sync_platform::telemetry::init("ingress");
    let app = Application::build(IngressConfig::parse(), true).await?;
    tracing::info!(port = app.port(), "ingress serving");
    app.run_until_stopped().await
}

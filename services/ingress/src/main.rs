use clap::Parser;
use ingress::{Application, IngressConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    omie_sync_platform::logging::init();
    let app = Application::build(IngressConfig::parse(), true).await?;
    tracing::info!(port = app.port(), "ingress serving");
    app.run_until_stopped().await
}

//! The app-key registry: which tenant a webhook's `appKey` belongs to, and the webhook token it
//! must carry. Read from the projector's `integrations` read model and refreshed in the
//! background, so a new integration is accepted within `REGISTRY_REFRESH_MS`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use omie_sync_platform::secrets::Sealer;
use omie_sync_store::{PgPool, StoreError, integrations};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

#[derive(Clone)]
pub struct Integration {
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    token: TokenRule,
}

#[derive(Clone)]
enum TokenRule {
    None,
    Required(SecretString),
    /// A token is set but cannot be opened (wrong SECRETS_KEY): refuse rather than accept all.
    Unusable,
}

impl Integration {
    /// Whether `presented` satisfies the integration's token rule, compared in constant time.
    pub fn accepts_token(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (TokenRule::None, _) => true,
            (TokenRule::Required(expected), Some(presented)) => {
                bool::from(expected.expose_secret().as_bytes().ct_eq(presented.as_bytes()))
            }
            _ => false,
        }
    }
}

#[derive(Clone, Default)]
pub struct Registry {
    by_app_key: Arc<RwLock<Arc<HashMap<String, Integration>>>>,
}

impl Registry {
    pub fn lookup(&self, app_key: &str) -> Option<Integration> {
        let snapshot = self.by_app_key.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        snapshot.get(app_key).cloned()
    }

    pub async fn refresh(&self, pool: &PgPool, sealer: &Sealer) -> Result<usize, StoreError> {
        let mut conn = pool.get().await?;
        let rows = integrations::with_app_key(&mut conn).await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            let Some(app_key) = row.app_key else { continue };
            let token = match row.webhook_token_sealed {
                None => TokenRule::None,
                Some(sealed) => match sealer.open(row.tenant_id, &sealed) {
                    Ok(token) => TokenRule::Required(token),
                    Err(error) => {
                        tracing::error!(tenant_id = %row.tenant_id, %error, "cannot open the webhook token; refusing its webhooks");
                        TokenRule::Unusable
                    }
                },
            };
            map.insert(app_key, Integration { tenant_id: row.tenant_id, integration_id: row.integration_id, token });
        }
        let count = map.len();
        *self.by_app_key.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(map);
        Ok(count)
    }

    /// Refreshes forever; a failed refresh keeps the last good snapshot.
    pub async fn keep_fresh(self, pool: PgPool, sealer: Sealer, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = self.refresh(&pool, &sealer).await {
                tracing::warn!(%error, "app-key registry refresh failed; serving the last snapshot");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(token: TokenRule) -> Integration {
        Integration { tenant_id: Uuid::nil(), integration_id: Uuid::nil(), token }
    }

    #[test]
    fn token_rules() {
        assert!(integration(TokenRule::None).accepts_token(None));
        let required = integration(TokenRule::Required(SecretString::from("s3cret")));
        assert!(required.accepts_token(Some("s3cret")));
        assert!(!required.accepts_token(Some("s3cre")));
        assert!(!required.accepts_token(Some("s3cret ")));
        assert!(!required.accepts_token(None));
        assert!(!integration(TokenRule::Unusable).accepts_token(Some("anything")));
    }
}

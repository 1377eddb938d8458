//! `devstack token`: a bearer token the services accept, for curl and the demo alike.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use omie_sync_platform::auth::{Claims, JwtKeys, Role};
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant (company) the token acts for.
    #[arg(long)]
    pub tenant: Uuid,
    /// Only admin and financeiro may use the integrations centre; `other` gets 403 (to try it).
    #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
    pub role: RoleArg,
    /// The Espresso user id, recorded as the actor of admin commands.
    #[arg(long, default_value = "dev-admin")]
    pub sub: String,
    /// Shown as the actor's name in the history.
    #[arg(long)]
    pub name: Option<String>,
    /// Shown as the actor's e-mail in the history.
    #[arg(long)]
    pub email: Option<String>,
    /// Hours until the token expires.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=24 * 365))]
    pub ttl_hours: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Financeiro,
    Other,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Financeiro => Role::Financeiro,
            RoleArg::Other => Role::Other,
        }
    }
}

pub fn mint(keys: &JwtKeys, args: &TokenArgs) -> Result<String> {
    Ok(keys.mint(&Claims {
        sub: args.sub.clone(),
        tenant_id: args.tenant,
        role: args.role.into(),
        name: args.name.clone(),
        email: args.email.clone(),
        exp: expiry(args.ttl_hours)?,
    }))
}

/// An admin token for `tenant` with the defaults of `devstack token`.
pub fn admin(keys: &JwtKeys, tenant: Uuid, sub: &str, name: &str) -> Result<String> {
    mint(
        keys,
        &TokenArgs {
            tenant,
            role: RoleArg::Admin,
            sub: sub.to_owned(),
            name: Some(name.to_owned()),
            email: None,
            ttl_hours: 12,
        },
    )
}

fn expiry(ttl_hours: u32) -> Result<i64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    let now = i64::try_from(now.as_secs()).context("the system clock is out of range")?;
    Ok(now + i64::from(ttl_hours) * 3600)
}

#[cfg(test)]
mod tests {
    use omie_sync_platform::auth::DEV_JWT_SECRET;
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn minted_tokens_verify_with_the_same_secret() {
        let keys = JwtKeys::new(&SecretString::from(DEV_JWT_SECRET));
        let tenant = Uuid::from_u128(0xa001);
        let token = admin(&keys, tenant, "dev-admin", "Demo").expect("the clock is sane");
        assert!(!token.contains(char::is_whitespace));
        let claims = keys.verify(&token).expect("the token verifies");
        assert_eq!((claims.tenant_id, claims.role, claims.sub.as_str()), (tenant, Role::Admin, "dev-admin"));
        assert_eq!(claims.name.as_deref(), Some("Demo"));
        let other = JwtKeys::new(&SecretString::from("another-secret-of-at-least-32-bytes!!"));
        assert!(other.verify(&token).is_err());
    }
}

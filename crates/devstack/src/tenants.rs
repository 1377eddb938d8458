//! The three demo tenants. `aurora` replays the fixtures, so it takes the manifest's
//! credentials; the other two get credentials derived from their ids (not from `--seed`), so
//! re-running the demo with another seed does not move their app keys.

use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::manifest::Manifest;

pub const AURORA_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_a001);
const BOREAL_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_a002);
const CERRADO_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_a003);

#[derive(Debug, Clone)]
pub struct Tenant {
    pub slug: &'static str,
    pub id: Uuid,
    pub app_key: String,
    pub app_secret: String,
    pub tag: String,
}

pub fn demo_tenants(manifest: &Manifest) -> Vec<Tenant> {
    vec![
        Tenant {
            slug: "aurora",
            id: AURORA_ID,
            app_key: manifest.app_key.clone(),
            app_secret: manifest.app_secret.clone(),
            tag: manifest.tag.clone(),
        },
        generated("boreal", BOREAL_ID, "Espresso"),
        // Another tag shows that the filter is per tenant.
        generated("cerrado", CERRADO_ID, "Viagem"),
    ]
}

fn generated(slug: &'static str, id: Uuid, tag: &str) -> Tenant {
    let mut rng = StdRng::seed_from_u64(id.as_u64_pair().1);
    // Omie app keys are 13 digits; a leading digit below 9 keeps clear of the fixtures'
    // "unknown app key" case, 9999999999999.
    let app_key = format!("{}{:012}", rng.random_range(1..9), rng.random_range(0..1_000_000_000_000u64));
    let app_secret = Alphanumeric.sample_string(&mut rng, 32);
    Tenant { slug, id, app_key, app_secret, tag: tag.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest { app_key: "3188245610231".into(), app_secret: "s".into(), tag: "Espresso".into(), cases: Vec::new() }
    }

    #[test]
    fn tenants_are_stable_and_distinct() {
        let tenants = demo_tenants(&manifest());
        assert_eq!(tenants.iter().map(|tenant| tenant.slug).collect::<Vec<_>>(), ["aurora", "boreal", "cerrado"]);
        assert_eq!(tenants[0].id.to_string(), "00000000-0000-4000-8000-00000000a001");
        assert_eq!(tenants[2].id.to_string(), "00000000-0000-4000-8000-00000000a003");
        assert_eq!(tenants[0].app_key, "3188245610231");
        for tenant in &tenants[1..] {
            assert_eq!(tenant.app_key.len(), 13);
            assert!(tenant.app_key.chars().all(|c| c.is_ascii_digit()));
            assert_ne!(tenant.app_key, "9999999999999");
            assert_ne!(tenant.app_key, tenants[0].app_key);
        }
        assert_ne!(tenants[1].app_key, tenants[2].app_key);
        let again = demo_tenants(&manifest());
        assert_eq!(tenants[1].app_key, again[1].app_key);
        assert_eq!(tenants[2].app_secret, again[2].app_secret);
    }
}

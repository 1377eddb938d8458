//! Sealing of secrets that enter the event log (Omie app secret, webhook token) with AES-256-GCM.
//! The tenant id is bound as associated data, so a sealed value copied to another tenant fails
//! to open. Format: `v1.` + base64(nonce ‖ ciphertext ‖ tag).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

const PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("SECRETS_KEY must be 32 bytes encoded in base64 (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("the sealed value is corrupt or was sealed with another key or tenant")]
    CannotOpen,
}

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// From the base64 `SECRETS_KEY`.
    pub fn from_base64_key(key: &SecretString) -> Result<Sealer, SecretsError> {
        let bytes = STANDARD.decode(key.expose_secret().trim()).map_err(|_| SecretsError::BadKey)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SecretsError::BadKey)?;
        Ok(Sealer { cipher })
    }

    pub fn seal(&self, tenant_id: Uuid, plaintext: &SecretString) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload { msg: plaintext.expose_secret().as_bytes(), aad: tenant_id.as_bytes() };
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}", STANDARD.encode(sealed))
    }

    pub fn open(&self, tenant_id: Uuid, sealed: &str) -> Result<SecretString, SecretsError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(SecretsError::CannotOpen)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretsError::CannotOpen)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SecretsError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload { msg: ciphertext, aad: tenant_id.as_bytes() };
        let plaintext = self.cipher.decrypt(Nonce::from_slice(nonce), payload).map_err(|_| SecretsError::CannotOpen)?;
        let text = String::from_utf8(plaintext).map_err(|_| SecretsError::CannotOpen)?;
        Ok(SecretString::from(text))
    }
}

/// The default of `SECRETS_KEY`, for a developer machine only.
pub const DEV_SECRETS_KEY: &str = "ZGV2LW9ubHktc2VjcmV0cy1rZXktMzItYnl0ZXMhISE=";

/// `••••1234`: the last four characters only, for every read that mentions a key.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64_key(&SecretString::from(STANDARD.encode([7u8; 32]))).unwrap()
    }

    #[test]
    fn seals_and_opens_for_the_same_tenant_only() {
        let tenant = Uuid::from_u128(1);
        let sealed = sealer().seal(tenant, &SecretString::from("omie-secret"));
        assert!(!sealed.contains("omie-secret"));
        assert_eq!(sealer().open(tenant, &sealed).unwrap().expose_secret(), "omie-secret");
        assert_eq!(sealer().open(Uuid::from_u128(2), &sealed).err(), Some(SecretsError::CannotOpen));
        assert_ne!(sealed, sealer().seal(tenant, &SecretString::from("omie-secret")));
    }

    #[test]
    fn rejects_bad_keys_and_garbage() {
        assert!(Sealer::from_base64_key(&SecretString::from("c2hvcnQ=")).is_err());
        assert!(Sealer::from_base64_key(&SecretString::from("not base64!")).is_err());
        assert_eq!(sealer().open(Uuid::nil(), "v1.AAAA").err(), Some(SecretsError::CannotOpen));
        assert_eq!(sealer().open(Uuid::nil(), "plain").err(), Some(SecretsError::CannotOpen));
    }

    #[test]
    fn the_dev_key_is_a_valid_key() {
        assert!(Sealer::from_base64_key(&SecretString::from(DEV_SECRETS_KEY)).is_ok());
    }

    #[test]
    fn masks_all_but_the_last_four() {
        assert_eq!(mask("3188245610231"), "••••0231");
        assert_eq!(mask("ab"), "••••ab");
    }
}

//! What a tagged Omie record must carry to become a user.

use omie_sync_events::ids;
use omie_sync_events::omie::OmieClient;

use super::email::{self, EmailCheck};

/// The kinds of import error. Names are stable: they are stored and shown to admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    MissingName,
    MissingEmail,
    InvalidEmail,
    DuplicateEmail,
    UnprocessableWebhook,
    MassDeactivationBlocked,
}

impl ErrorKind {
    /// Kinds tied to one Omie record (as opposed to a webhook that names none).
    pub const RECORD_KINDS: [ErrorKind; 4] =
        [ErrorKind::MissingName, ErrorKind::MissingEmail, ErrorKind::InvalidEmail, ErrorKind::DuplicateEmail];

    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::MissingName,
        ErrorKind::MissingEmail,
        ErrorKind::InvalidEmail,
        ErrorKind::DuplicateEmail,
        ErrorKind::UnprocessableWebhook,
        ErrorKind::MassDeactivationBlocked,
    ];

    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingName => "missing_name",
            ErrorKind::MissingEmail => "missing_email",
            ErrorKind::InvalidEmail => "invalid_email",
            ErrorKind::DuplicateEmail => "duplicate_email",
            ErrorKind::UnprocessableWebhook => "unprocessable_webhook",
            ErrorKind::MassDeactivationBlocked => ids::MASS_DEACTIVATION_BLOCKED,
        }
    }
}

/// The user fields a valid record yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub email: String,
    pub document: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

/// Longest name kept: Omie's own fields are far shorter, so more is garbage, not a name.
pub const MAX_NAME_CHARS: usize = 255;

/// Name: `razao_social`, else `nome_fantasia`, trimmed and capped at [`MAX_NAME_CHARS`].
pub fn name_of(client: &OmieClient) -> Option<String> {
    let name = client.razao_social.as_deref().or(client.nome_fantasia.as_deref())?;
    Some(name.chars().take(MAX_NAME_CHARS).collect())
}

pub fn validate(client: &OmieClient) -> Result<Candidate, Failure> {
    let name = name_of(client).ok_or_else(|| Failure {
        kind: ErrorKind::MissingName,
        message: "the record has neither razao_social nor nome_fantasia".into(),
    })?;
    let email = match email::check(client.email.as_deref()) {
        EmailCheck::Valid(address) => address,
        EmailCheck::Missing => {
            return Err(Failure { kind: ErrorKind::MissingEmail, message: "the record has no e-mail address".into() });
        }
        EmailCheck::Invalid => {
            return Err(Failure {
                kind: ErrorKind::InvalidEmail,
                message: format!("no valid e-mail address in {:?}", client.email.as_deref().unwrap_or_default()),
            });
        }
    };
    Ok(Candidate { name, email, document: client.cnpj_cpf.clone() })
}

/// The address a record would claim, if it has a valid one (to preload e-mail owners).
pub fn claimed_email(client: &OmieClient) -> Option<String> {
    match email::check(client.email.as_deref()) {
        EmailCheck::Valid(address) => Some(address),
        _ => None,
    }
}

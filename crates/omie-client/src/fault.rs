//! Omie's faults (OMIE.md "Faults"): `{"faultstring", "faultcode"}` read before the status, each
//! mapped to a typed error that says what the caller must do.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OmieError {
    /// Wrong or missing key/secret, or a suspended app: a configuration error, never retried.
    #[error("Omie refused the credentials: {0}")]
    InvalidCredentials(String),
    /// The same request was repeated too soon; Omie asks to wait.
    #[error("Omie detected a redundant call; wait {0:?}")]
    Redundant(Duration),
    /// The method is blocked for misuse; every further call extends the block.
    #[error("Omie blocked this method for misuse for {0:?}")]
    Blocked(Duration),
    /// The same method is already running for this app key.
    #[error("Omie is already running this method for the app key")]
    AlreadyRunning,
    /// `ConsultarCliente` of a code Omie does not have.
    #[error("Omie has no such record: {0}")]
    NotFound(String),
    /// HTTP 429.
    #[error("Omie answered 429 Too Many Requests")]
    TooManyRequests,
    /// Any other fault or unexpected answer.
    #[error("Omie answered {status}: {message}")]
    Unexpected { status: u16, message: String },
    #[error("Omie could not be reached: {0}")]
    Transport(String),
    /// A page past the end or a filter matching nothing: an empty result, not a failure.
    #[error("Omie has no records for this page")]
    NoRecords,
}

impl OmieError {
    /// A server error or no answer at all: worth a bounded, spaced retry.
    pub fn is_transient(&self) -> bool {
        matches!(self, OmieError::Unexpected { status: 500.., .. } | OmieError::Transport(_))
    }

    /// A stable label for metrics and spans.
    pub fn code(&self) -> &'static str {
        match self {
            OmieError::InvalidCredentials(_) => "invalid_credentials",
            OmieError::Redundant(_) => "redundant",
            OmieError::Blocked(_) => "blocked",
            OmieError::AlreadyRunning => "already_running",
            OmieError::NotFound(_) => "not_found",
            OmieError::TooManyRequests => "too_many_requests",
            OmieError::Unexpected { .. } => "unexpected",
            OmieError::Transport(_) => "transport",
            OmieError::NoRecords => "no_records",
        }
    }
}

#[derive(Debug, Deserialize)]
struct FaultBody {
    #[serde(default)]
    faultstring: String,
    #[serde(default)]
    faultcode: String,
}

/// Reads a fault from an answer's status and body; `None` when the answer is not a fault.
pub fn classify(status: u16, body: &[u8]) -> Option<OmieError> {
    let fault = serde_json::from_slice::<FaultBody>(body)
        .ok()
        .filter(|fault| !fault.faultcode.is_empty() || !fault.faultstring.is_empty());
    let Some(fault) = fault else {
        return match status {
            200..=299 => None,
            429 => Some(OmieError::TooManyRequests),
            _ => Some(OmieError::Unexpected {
                status,
                message: String::from_utf8_lossy(body).chars().take(200).collect(),
            }),
        };
    };
    let message = fault.faultstring.clone();
    let code = fault.faultcode.as_str();
    Some(match code {
        "SOAP-ENV:Client-5113" => OmieError::NoRecords,
        "SOAP-ENV:Client-6" => OmieError::Redundant(Duration::from_secs(seconds_in(&message).unwrap_or(60))),
        "MISUSE_API_PROCESS" => OmieError::Blocked(Duration::from_secs(seconds_in(&message).unwrap_or(1_800))),
        "SOAP-ENV:Client-1880" => OmieError::AlreadyRunning,
        "SOAP-ENV:Client-105" => OmieError::NotFound(message),
        _ if message.contains("chave de acesso") => OmieError::InvalidCredentials(message),
        _ if status == 429 => OmieError::TooManyRequests,
        _ => OmieError::Unexpected { status, message },
    })
}

/// The first number in a fault message ("Aguarde 23 segundos…").
fn seconds_in(message: &str) -> Option<u64> {
    message.split(|c: char| !c.is_ascii_digit()).find(|part| !part.is_empty()).and_then(|digits| digits.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(code: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"faultcode": code, "faultstring": message})).unwrap()
    }

    #[test]
    fn every_documented_fault_is_typed() {
        let cases = [
            (
                403,
                fault("SOAP-ENV:Server", "A chave de acesso não está preenchida ou não é válida."),
                OmieError::InvalidCredentials("A chave de acesso não está preenchida ou não é válida.".into()),
            ),
            (
                500,
                fault("SOAP-ENV:Server", "A chave de acesso está inválida ou o aplicativo está suspenso."),
                OmieError::InvalidCredentials("A chave de acesso está inválida ou o aplicativo está suspenso.".into()),
            ),
            (
                500,
                fault("SOAP-ENV:Client-5113", "ERROR: Não existem registros para a página [7]!"),
                OmieError::NoRecords,
            ),
            (
                500,
                fault(
                    "SOAP-ENV:Client-6",
                    "ERROR: Consumo redundante detectado. Aguarde 23 segundos para tentar novamente (REDUNDANT).",
                ),
                OmieError::Redundant(Duration::from_secs(23)),
            ),
            (
                425,
                fault("MISUSE_API_PROCESS", "API bloqueada por consumo indevido. Tente novamente em 1740 segundos."),
                OmieError::Blocked(Duration::from_secs(1740)),
            ),
            (
                500,
                fault("SOAP-ENV:Client-1880", "Já existe uma requisição desse método sendo executada"),
                OmieError::AlreadyRunning,
            ),
            (
                500,
                fault("SOAP-ENV:Client-105", "ERROR: Cliente não cadastrado para o Código [9] !"),
                OmieError::NotFound("ERROR: Cliente não cadastrado para o Código [9] !".into()),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(classify(status, &body), Some(expected));
        }
        assert_eq!(classify(429, b"429: Too many Requests"), Some(OmieError::TooManyRequests));
        assert_eq!(classify(200, br#"{"pagina": 1}"#), None);
        assert!(matches!(classify(502, b"<html>"), Some(OmieError::Unexpected { status: 502, .. })));
    }
}

//! The e-mail rule: Omie's field may hold several addresses separated by `,` or `;`; the first
//! valid one counts, lower-cased.

use email_address::EmailAddress;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailCheck {
    Valid(String),
    Missing,
    Invalid,
}

pub fn check(field: Option<&str>) -> EmailCheck {
    let mut candidates =
        field.unwrap_or_default().split([',', ';']).map(str::trim).filter(|candidate| !candidate.is_empty()).peekable();
    if candidates.peek().is_none() {
        return EmailCheck::Missing;
    }
    candidates
        .find(|candidate| is_deliverable(candidate))
        .map(|address| EmailCheck::Valid(address.to_lowercase()))
        .unwrap_or(EmailCheck::Invalid)
}

/// RFC 5322 syntax (by `email_address`) plus a dotted domain: `a@localhost` is valid syntax but
/// never a real Espresso user's address.
fn is_deliverable(candidate: &str) -> bool {
    let Ok(address) = candidate.parse::<EmailAddress>() else {
        return false;
    };
    let domain = address.domain();
    domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.starts_with('[')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_valid_address_lower_cased() {
        assert_eq!(
            check(Some("adm@bemestar-demo.com.br; diretoria@bemestar-demo.com.br")),
            EmailCheck::Valid("adm@bemestar-demo.com.br".into())
        );
        assert_eq!(
            check(Some("nada, Financeiro@Exemplo.COM.br")),
            EmailCheck::Valid("financeiro@exemplo.com.br".into())
        );
    }

    #[test]
    fn missing_and_invalid_are_told_apart() {
        assert_eq!(check(None), EmailCheck::Missing);
        assert_eq!(check(Some(" ; , ")), EmailCheck::Missing);
        assert_eq!(check(Some("compras@@pontofinal-demo")), EmailCheck::Invalid);
        assert_eq!(check(Some("joao@localhost")), EmailCheck::Invalid);
        assert_eq!(check(Some("sem-arroba.com.br")), EmailCheck::Invalid);
    }
}

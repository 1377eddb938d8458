//! How to fix each kind of import error in Omie, in Portuguese (the admins' language): the log of
//! an error shows it beside each failing event.

use super::record::ErrorKind;

/// What the admin should do in Omie; `code` and `email` name the record when known.
pub fn how_to_fix(kind: &str, code: Option<i64>, email: Option<&str>) -> String {
    let record = code.map_or_else(|| "O cadastro".to_owned(), |code| format!("O cadastro {code}"));
    let email = email.filter(|email| !email.trim().is_empty()).unwrap_or("(vazio)");
    match ErrorKind::parse(kind) {
        Some(ErrorKind::MissingName) => format!(
            "{record} não tem Razão Social nem Nome Fantasia. No Omie, abra o cliente/fornecedor, preencha a \
             Razão Social e salve: a correção chega por webhook e o erro se resolve sozinho."
        ),
        Some(ErrorKind::MissingEmail) => format!(
            "{record} está sem e-mail. No Omie, abra o cliente/fornecedor, preencha o campo E-mail com o \
             endereço da pessoa que vai usar o Espresso e salve."
        ),
        Some(ErrorKind::InvalidEmail) => format!(
            "O campo E-mail de {} (\"{email}\") não tem nenhum endereço válido. Corrija no Omie no formato \
             nome@empresa.com.br (para mais de um endereço, separe com ponto e vírgula; o primeiro válido é o \
             usado) e salve.",
            record.to_lowercase()
        ),
        Some(ErrorKind::DuplicateEmail) => format!(
            "O e-mail \"{email}\" de {} já pertence a outro usuário ativo. Cada usuário precisa de um e-mail \
             próprio: no Omie, troque o e-mail de um dos dois cadastros, ou tire a tag da integração do \
             cadastro que não deve virar usuário.",
            record.to_lowercase()
        ),
        Some(ErrorKind::UnprocessableWebhook) => "O Omie enviou um webhook sem o código do cliente/fornecedor. \
             Não há o que corrigir no cadastro; se o erro se repetir, rode uma sincronização completa para \
             conferir os dados."
            .to_owned(),
        Some(ErrorKind::MassDeactivationBlocked) => "A sincronização completa não encontrou no Omie muitos \
             usuários que estão ativos aqui — mais do que o limite de segurança — e não desativou ninguém. \
             Confira se as credenciais ou a tag mudaram. Se a remoção foi intencional, confirme a desativação; \
             se não, arquive este erro."
            .to_owned(),
        None => format!("{record} falhou numa regra desconhecida ({kind}); fale com o suporte."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_explanation_naming_the_record() {
        let texts: Vec<String> =
            ErrorKind::ALL.iter().map(|kind| how_to_fix(kind.as_str(), Some(8612300401), Some("a@@b"))).collect();
        for (index, text) in texts.iter().enumerate() {
            assert!(!text.contains("desconhecida"), "{text}");
            assert!(texts.iter().skip(index + 1).all(|other| other != text));
        }
        assert!(texts[2].contains("\"a@@b\"") && texts[2].contains("8612300401"), "{}", texts[2]);
        assert!(how_to_fix("something_new", None, None).contains("desconhecida"));
    }
}

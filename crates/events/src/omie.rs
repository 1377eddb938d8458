//! Omie's webhook body and client/supplier record, read leniently: Omie sends `""` for empty,
//! numbers as strings and strings as numbers, and extra keys we ignore.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The three topics that carry clients/suppliers.
pub const TOPIC_INCLUDED: &str = "ClienteFornecedor.Incluido";
pub const TOPIC_CHANGED: &str = "ClienteFornecedor.Alterado";
pub const TOPIC_DELETED: &str = "ClienteFornecedor.Excluido";

/// A webhook body as Omie posts it to `/api/v1/webhooks/omie/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WebhookBody {
    #[serde(rename = "messageId", default, deserialize_with = "lenient_string")]
    pub message_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub topic: Option<String>,
    /// For `ClienteFornecedor.*` an object shaped like [`OmieClient`]; other topics may send arrays.
    #[serde(default)]
    pub event: Option<Value>,
    #[serde(default)]
    pub author: Option<Value>,
    #[serde(rename = "appKey", default, deserialize_with = "lenient_string")]
    pub app_key: Option<String>,
    #[serde(rename = "appHash", default, deserialize_with = "lenient_string")]
    pub app_hash: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub origin: Option<String>,
    /// Only in Omie's registration ping: `{"ping": "omie"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Value>,
}

/// One tag as Omie sends it: `{"tag": "X"}` (a bare `"X"` is tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OmieTag {
    pub tag: String,
}

/// `info`: when Omie created and last changed the record (Brazil local time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OmieInfo {
    #[serde(rename = "dAlt", default, deserialize_with = "lenient_string")]
    pub changed_on: Option<String>,
    #[serde(rename = "hAlt", default, deserialize_with = "lenient_string")]
    pub changed_at: Option<String>,
    #[serde(rename = "dInc", default, deserialize_with = "lenient_string")]
    pub created_on: Option<String>,
    #[serde(rename = "hInc", default, deserialize_with = "lenient_string")]
    pub created_at: Option<String>,
}

/// A client/supplier record (`clientes_cadastro` row or webhook `event`): only the fields the
/// product reads. Every field tolerates `""`, a wrong JSON type, or absence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OmieClient {
    #[serde(default, deserialize_with = "lenient_code")]
    pub codigo_cliente_omie: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub codigo_cliente_integracao: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub razao_social: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub nome_fantasia: Option<String>,
    /// One address, or several separated by `,` or `;`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub cnpj_cpf: Option<String>,
    /// `"S"` when the record is inactive in Omie.
    #[serde(default, deserialize_with = "lenient_string")]
    pub inativo: Option<String>,
    #[serde(default, deserialize_with = "lenient_tags")]
    pub tags: Vec<OmieTag>,
    #[serde(default, deserialize_with = "lenient_info")]
    pub info: Option<OmieInfo>,
}

impl OmieClient {
    /// Reads a raw record; a value that is not an object yields an empty record.
    pub fn from_value(value: &Value) -> OmieClient {
        if !value.is_object() {
            return OmieClient::default();
        }
        OmieClient::deserialize(value).unwrap_or_default()
    }

    pub fn is_inactive(&self) -> bool {
        self.inativo.as_deref().is_some_and(|flag| flag.trim().eq_ignore_ascii_case("S"))
    }

    /// Tag filter: one tag equals `wanted`, trimmed and case-insensitively.
    pub fn has_tag(&self, wanted: &str) -> bool {
        let wanted = wanted.trim().to_lowercase();
        self.tags.iter().any(|tag| tag.tag.trim().to_lowercase() == wanted)
    }

    /// `info.dAlt`+`hAlt` as an instant (Omie's clock is Brasília time, UTC−3, no DST since 2019).
    pub fn changed_at(&self) -> Option<DateTime<Utc>> {
        let info = self.info.as_ref()?;
        let date = NaiveDate::parse_from_str(info.changed_on.as_deref()?.trim(), "%d/%m/%Y").ok()?;
        let time = match info.changed_at.as_deref() {
            Some(text) => NaiveTime::parse_from_str(text.trim(), "%H:%M:%S").ok()?,
            None => NaiveTime::MIN,
        };
        let brasilia = FixedOffset::west_opt(3 * 3600)?;
        let local = brasilia.from_local_datetime(&date.and_time(time)).single()?;
        Some(local.with_timezone(&Utc))
    }
}

/// Extracts `codigo_cliente_omie` from a raw event, accepting numbers and numeric strings.
pub fn omie_code_of(event: &Value) -> Option<i64> {
    event.get("codigo_cliente_omie").and_then(code_from_value)
}

fn code_from_value(value: &Value) -> Option<i64> {
    let code = match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }?;
    (code > 0).then_some(code)
}

fn non_empty(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => non_empty(&text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(if flag { "S" } else { "N" }.to_owned()),
        _ => None,
    })
}

fn lenient_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(code_from_value(&Value::deserialize(deserializer)?))
}

fn lenient_tags<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<OmieTag>, D::Error> {
    let Value::Array(items) = Value::deserialize(deserializer)? else {
        return Ok(Vec::new());
    };
    Ok(items
        .iter()
        .filter_map(|item| match item {
            Value::String(tag) => non_empty(tag),
            Value::Object(fields) => fields.get("tag").and_then(Value::as_str).and_then(non_empty),
            _ => None,
        })
        .map(|tag| OmieTag { tag })
        .collect())
}

fn lenient_info<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OmieInfo>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if !value.is_object() {
        return Ok(None);
    }
    Ok(OmieInfo::deserialize(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_loose_omie_values() {
        let client = OmieClient::from_value(&json!({
            "codigo_cliente_omie": "8612300451",
            "razao_social": "  ",
            "nome_fantasia": "Marina",
            "email": 12,
            "inativo": "s",
            "tags": [{"tag": " Espresso "}, "Cliente", 7, {"x": 1}],
            "info": {"dAlt": "05/03/2026", "hAlt": "14:30:00"},
            "unknown_key": {"nested": true}
        }));
        assert_eq!(client.codigo_cliente_omie, Some(8612300451));
        assert_eq!(client.razao_social, None);
        assert_eq!(client.nome_fantasia.as_deref(), Some("Marina"));
        assert_eq!(client.email.as_deref(), Some("12"));
        assert!(client.is_inactive());
        assert!(client.has_tag("espresso"));
        assert!(client.has_tag("CLIENTE"));
        assert!(!client.has_tag("Fornecedor"));
        assert_eq!(client.changed_at().unwrap().to_rfc3339(), "2026-03-05T17:30:00+00:00");
    }

    #[test]
    fn wrong_shapes_become_empty_not_errors() {
        let client = OmieClient::from_value(&json!({"tags": "Espresso", "info": [], "codigo_cliente_omie": -4}));
        assert_eq!(client, OmieClient::default());
        assert_eq!(OmieClient::from_value(&json!([1, 2])), OmieClient::default());
        assert_eq!(omie_code_of(&json!({"codigo_cliente_omie": 12.5})), None);
        assert_eq!(omie_code_of(&json!({"codigo_cliente_omie": " 77 "})), Some(77));
    }
}

//! The generated webhook stream of the demo: one tenant's Omie client base evolving over time,
//! delivered as Omie would (first event of a record `Incluido`, later ones `Alterado`, the last
//! maybe `Excluido`, now and then a redelivery). Everything comes from the caller's rng, so a
//! seed reproduces the stream byte for byte. The shares below are what the summary's numbers
//! should roughly reflect; the tests hold the generator to them.

use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use uuid::Uuid;

use crate::documents::{random_cnpj, random_cpf};

pub const TOPIC_INCLUDED: &str = "ClienteFornecedor.Incluido";
pub const TOPIC_CHANGED: &str = "ClienteFornecedor.Alterado";
pub const TOPIC_DELETED: &str = "ClienteFornecedor.Excluido";

/// New records carrying the tenant's tag (the rest are plain clients or suppliers).
pub const TAGGED_SHARE: f64 = 0.7;
/// New records that are people (CPF) rather than companies (CNPJ).
pub const PERSON_SHARE: f64 = 0.35;
pub const MISSING_EMAIL_SHARE: f64 = 0.05;
pub const MALFORMED_EMAIL_SHARE: f64 = 0.05;
/// `a@x.com.br; b@x.com.br`: Omie lets users type several addresses in one field.
pub const SEVERAL_EMAILS_SHARE: f64 = 0.08;
/// An address another record of the tenant already uses (family members, a shared inbox).
pub const DUPLICATE_EMAIL_SHARE: f64 = 0.04;
pub const MIXED_CASE_EMAIL_SHARE: f64 = 0.12;
/// Deliveries that repeat an earlier body with its messageId (Omie retries on a lost answer).
pub const REDELIVERY_SHARE: f64 = 0.05;
/// Of the non-redelivered webhooks, those that introduce a new record; the rest change one.
const NEW_RECORD_SHARE: f64 = 0.45;
/// Below this many live records every webhook is a new one, so changes have something to pick.
const MIN_LIVE_RECORDS: usize = 5;
/// How far back a redelivery may reach: Omie retries soon after the lost answer.
const REDELIVERY_WINDOW: usize = 3;

#[rustfmt::skip]
const MALE_NAMES: &[&str] = &[
    "João", "José", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz", "Marcos",
    "Luís", "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe", "Rodrigo",
    "Sebastião", "Henrique", "Vinícius",
];

#[rustfmt::skip]
const FEMALE_NAMES: &[&str] = &[
    "Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda", "Patrícia",
    "Aline", "Sandra", "Camila", "Amanda", "Bruna", "Jéssica", "Letícia", "Júlia", "Luciana",
    "Vanessa", "Mariana", "Conceição", "Luíza", "Beatriz", "Larissa",
];

#[rustfmt::skip]
const SURNAMES: &[&str] = &[
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
    "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
    "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira",
    "Araújo", "Correia", "Monteiro", "Moura", "Cavalcanti", "Batista", "Pinto",
];

/// Before a surname, as in "Maria da Silva"; the plural forms only fit some surnames.
const NAME_PARTICLES: &[&str] = &["da", "de"];

#[rustfmt::skip]
const COMPANY_KINDS: &[&str] = &[
    "Comercial", "Distribuidora", "Transportes", "Construtora", "Indústria", "Mercado", "Padaria",
    "Farmácia", "Auto Peças", "Consultoria", "Agropecuária", "Papelaria", "Restaurante", "Clínica",
    "Contabilidade", "Serralheria", "Ótica", "Tecnologia", "Laticínios", "Materiais de Construção",
    "Hotel", "Viagens",
];

#[rustfmt::skip]
const COMPANY_CORES: &[&str] = &[
    "Bela Vista", "Horizonte", "São Jorge", "Santa Luzia", "Ipê Amarelo", "Boa Esperança",
    "Sol Nascente", "Nova Era", "Estrela", "Primavera", "Serra Verde", "Vale do Sol", "Três Irmãos",
    "Bom Jesus", "Central", "União", "Pioneira", "Paraná", "Atlântico", "Jequitibá", "Canaã",
    "Progresso",
];

const COMPANY_SUFFIXES: &[&str] = &["Ltda", "Ltda", "Ltda", "Eireli", "ME", "EPP", "S.A."];

const COMPANY_MAILBOXES: &[&str] = &["contato", "financeiro", "comercial", "adm", "vendas", "compras", "fiscal"];

/// Fictitious providers, following the fixtures' `-demo` convention so no generated address can
/// reach a real mailbox.
const PERSON_DOMAINS: &[&str] =
    &["email-demo.com.br", "correio-demo.com.br", "webmail-demo.com.br", "provedor-demo.net.br"];

const OTHER_TAGS: &[&str] = &["Cliente", "Fornecedor"];

const AUTHOR_ROLES: &[&str] = &["Financeiro", "Cadastro", "Comercial"];

/// City as Omie writes it, state, first five CEP digits, phone area code.
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("SAO PAULO (SP)", "SP", "01310", "11"),
    ("CAMPINAS (SP)", "SP", "13010", "19"),
    ("RIO DE JANEIRO (RJ)", "RJ", "20040", "21"),
    ("BELO HORIZONTE (MG)", "MG", "30130", "31"),
    ("CURITIBA (PR)", "PR", "80010", "41"),
    ("PORTO ALEGRE (RS)", "RS", "90010", "51"),
    ("SALVADOR (BA)", "BA", "40020", "71"),
    ("RECIFE (PE)", "PE", "50010", "81"),
    ("FORTALEZA (CE)", "CE", "60060", "85"),
    ("GOIANIA (GO)", "GO", "74003", "62"),
    ("BRASILIA (DF)", "DF", "70040", "61"),
    ("FLORIANOPOLIS (SC)", "SC", "88010", "48"),
    ("VITORIA (ES)", "ES", "29010", "27"),
    ("CUIABA (MT)", "MT", "78005", "65"),
    ("BELEM (PA)", "PA", "66010", "91"),
];

#[rustfmt::skip]
const STREETS: &[&str] = &[
    "Rua das Palmeiras", "Avenida Brasil", "Rua XV de Novembro", "Rua Sete de Setembro",
    "Avenida Paulista", "Rua Tiradentes", "Avenida Getúlio Vargas", "Rua Dom Pedro II",
    "Rua Marechal Deodoro", "Rua São Bento", "Avenida Afonso Pena", "Rua da Consolação",
];

#[rustfmt::skip]
const DISTRICTS: &[&str] = &[
    "Centro", "Jardim América", "Vila Nova", "Boa Vista", "Santa Cecília", "Liberdade",
    "Industrial", "São José",
];

/// The tenant a stream is generated for.
pub struct StreamSpec<'a> {
    pub slug: &'a str,
    pub app_key: &'a str,
    /// The tag the tenant's integration filters on; tagged records carry it in varying case.
    pub tag: &'a str,
}

/// One delivery: the exact bytes to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub message_id: Uuid,
    pub body: Vec<u8>,
    pub redelivery: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    message_id: Uuid,
    topic: &'static str,
    event: &'a ClientRecord,
    author: &'a Author,
    app_key: &'a str,
    app_hash: &'a str,
    origin: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Author {
    email: String,
    name: String,
    user_id: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Tag {
    tag: String,
}

/// The `event` of a `ClienteFornecedor.*` webhook, with Omie's field names.
#[derive(Debug, Clone, Serialize)]
struct ClientRecord {
    codigo_cliente_omie: i64,
    codigo_cliente_integracao: String,
    razao_social: String,
    nome_fantasia: String,
    cnpj_cpf: String,
    pessoa_fisica: &'static str,
    email: String,
    inativo: &'static str,
    bloquear_faturamento: &'static str,
    exterior: &'static str,
    tags: Vec<Tag>,
    cidade: &'static str,
    estado: &'static str,
    cep: String,
    endereco: &'static str,
    endereco_numero: String,
    bairro: &'static str,
    telefone1_ddd: &'static str,
    telefone1_numero: String,
}

/// Who an address is derived from.
struct Identity {
    first: &'static str,
    last: &'static str,
    person: bool,
    /// The company's own domain, or a provider for a person.
    domain: String,
}

struct Record {
    fields: ClientRecord,
    identity: Identity,
    email_usable: bool,
    deleted: bool,
}

/// Generates `count` deliveries for one tenant.
pub fn tenant_stream(spec: &StreamSpec<'_>, count: usize, rng: &mut StdRng) -> Vec<Webhook> {
    let mut tenant = TenantBase::new(spec, rng);
    let mut webhooks: Vec<Webhook> = Vec::with_capacity(count);
    while webhooks.len() < count {
        if !webhooks.is_empty() && rng.random_bool(REDELIVERY_SHARE) {
            let recent: Vec<&Webhook> =
                webhooks.iter().rev().filter(|webhook| !webhook.redelivery).take(REDELIVERY_WINDOW).collect();
            let again = recent[rng.random_range(0..recent.len())].clone();
            webhooks.push(Webhook { redelivery: true, ..again });
            continue;
        }
        let (topic, index) = tenant.next_change(rng);
        webhooks.push(tenant.webhook(topic, index, rng));
    }
    webhooks
}

/// One tenant's Omie client base as the stream evolves it.
struct TenantBase<'a> {
    spec: &'a StreamSpec<'a>,
    app_hash: String,
    authors: Vec<Author>,
    records: Vec<Record>,
    next_code: i64,
    /// Plain valid addresses handed out so far, the pool duplicates are drawn from.
    addresses: Vec<String>,
}

impl<'a> TenantBase<'a> {
    fn new(spec: &'a StreamSpec<'a>, rng: &mut StdRng) -> TenantBase<'a> {
        let hash: String = (0..8).map(|_| char::from(pick(rng, b"abcdefghijklmnopqrstuvwxyz0123456789"))).collect();
        let company_domain = format!("{}-demo.com.br", slug(spec.slug));
        let authors = AUTHOR_ROLES
            .iter()
            .map(|role| {
                let names = first_names(rng);
                let first = pick(rng, names);
                Author {
                    email: format!("{}.{}@{company_domain}", slug(first), slug(role)),
                    name: format!("{first} {role}"),
                    user_id: rng.random_range(1_000..100_000),
                }
            })
            .collect();
        TenantBase {
            spec,
            app_hash: format!("{}-{hash}", spec.slug),
            authors,
            records: Vec::new(),
            // Ten digits like Omie's codes, below the fixtures' 86123004xx so the demo tenant's
            // generated records never collide with the manifest's.
            next_code: rng.random_range(5_000_000_000..6_000_000_000),
            addresses: Vec::new(),
        }
    }

    /// Decides what happens next and applies it to the base: the topic and the record's index.
    fn next_change(&mut self, rng: &mut StdRng) -> (&'static str, usize) {
        let live: Vec<usize> = (0..self.records.len()).filter(|index| !self.records[*index].deleted).collect();
        if live.len() < MIN_LIVE_RECORDS || rng.random_bool(NEW_RECORD_SHARE) {
            let record = self.new_record(rng);
            self.records.push(record);
            return (TOPIC_INCLUDED, self.records.len() - 1);
        }
        let index = pick(rng, &live);
        let roll = rng.random_range(0..100);
        if roll < 5 {
            self.records[index].deleted = true;
            return (TOPIC_DELETED, index);
        }
        let tag = self.spec.tag;
        let record = &mut self.records[index];
        match roll {
            5..15 => {
                let inactive = record.fields.inativo == "S";
                record.fields.inativo = yes_no(!inactive);
            }
            15..30 => {
                if has_tag(&record.fields.tags, tag) {
                    record.fields.tags.retain(|candidate| !candidate.tag.eq_ignore_ascii_case(tag));
                } else {
                    record.fields.tags.push(Tag { tag: tag_variant(rng, tag) });
                }
            }
            30..50 => {
                // Someone saw the import error and fixed the address, or the contact changed.
                let (email, usable) = if !record.email_usable && rng.random_bool(0.7) {
                    (address(rng, &record.identity), true)
                } else {
                    email_field(rng, &record.identity, &self.addresses)
                };
                record.fields.email = email;
                record.email_usable = usable;
            }
            _ => {
                if rng.random_bool(0.5) {
                    record.fields.telefone1_numero = phone(rng, record.identity.person);
                } else {
                    record.fields.endereco = pick(rng, STREETS);
                    record.fields.endereco_numero = rng.random_range(1..3000).to_string();
                    record.fields.bairro = pick(rng, DISTRICTS);
                }
            }
        }
        (TOPIC_CHANGED, index)
    }

    fn new_record(&mut self, rng: &mut StdRng) -> Record {
        self.next_code += rng.random_range(1..40);
        let person = rng.random_bool(PERSON_SHARE);
        let names = first_names(rng);
        let first = pick(rng, names);
        let last = pick(rng, SURNAMES);
        let (razao_social, nome_fantasia, domain) = if person {
            let mut full = first.to_string();
            let middle = pick(rng, names);
            if middle != first && rng.random_bool(0.3) {
                full = format!("{full} {middle}");
            }
            if rng.random_bool(0.25) {
                full = format!("{full} {}", pick(rng, NAME_PARTICLES));
            }
            full = format!("{full} {last}");
            if rng.random_bool(0.4) {
                full = format!("{full} {}", pick(rng, SURNAMES));
            }
            (full, format!("{first} {last}"), pick(rng, PERSON_DOMAINS).to_string())
        } else {
            let kind = pick(rng, COMPANY_KINDS);
            let core = if rng.random_bool(0.5) { pick(rng, SURNAMES) } else { pick(rng, COMPANY_CORES) };
            let trade_name = format!("{kind} {core}");
            let domain = format!("{}-demo.com.br", slug(&trade_name));
            (format!("{trade_name} {}", pick(rng, COMPANY_SUFFIXES)), trade_name, domain)
        };
        let identity = Identity { first, last, person, domain };
        let (email, email_usable) = email_field(rng, &identity, &self.addresses);
        if email_usable && !email.contains([';', ',']) {
            self.addresses.push(email.clone());
        }
        let (cidade, estado, cep_prefix, ddd) = pick(rng, CITIES);
        let sequence = self.records.len() + 1;
        Record {
            fields: ClientRecord {
                codigo_cliente_omie: self.next_code,
                codigo_cliente_integracao: if rng.random_bool(0.8) {
                    format!("CLI-{sequence:06}")
                } else {
                    String::new()
                },
                razao_social,
                nome_fantasia,
                cnpj_cpf: if person { random_cpf(rng) } else { random_cnpj(rng) },
                pessoa_fisica: yes_no(person),
                email,
                inativo: yes_no(rng.random_bool(0.03)),
                bloquear_faturamento: "N",
                exterior: "N",
                tags: tags(rng, self.spec.tag),
                cidade,
                estado,
                cep: format!("{cep_prefix}{:03}", rng.random_range(0..1000)),
                endereco: pick(rng, STREETS),
                endereco_numero: rng.random_range(1..3000).to_string(),
                bairro: pick(rng, DISTRICTS),
                telefone1_ddd: ddd,
                telefone1_numero: phone(rng, person),
            },
            identity,
            email_usable,
            deleted: false,
        }
    }

    fn webhook(&self, topic: &'static str, index: usize, rng: &mut StdRng) -> Webhook {
        let message_id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        let body = Body {
            message_id,
            topic,
            event: &self.records[index].fields,
            author: &self.authors[rng.random_range(0..self.authors.len())],
            app_key: self.spec.app_key,
            app_hash: &self.app_hash,
            origin: "omie-connect-2.0",
        };
        let body = serde_json::to_vec(&body).expect("a body of strings and numbers always serialises");
        Webhook { message_id, body, redelivery: false }
    }
}

/// Men's or women's names, so a middle name matches the first.
fn first_names(rng: &mut StdRng) -> &'static [&'static str] {
    if rng.random_bool(0.5) { MALE_NAMES } else { FEMALE_NAMES }
}

fn tags(rng: &mut StdRng, tag: &str) -> Vec<Tag> {
    let mut tags: Vec<Tag> =
        OTHER_TAGS.iter().filter(|_| rng.random_bool(0.4)).map(|other| Tag { tag: other.to_string() }).collect();
    if rng.random_bool(TAGGED_SHARE) {
        let position = rng.random_range(0..=tags.len());
        tags.insert(position, Tag { tag: tag_variant(rng, tag) });
    }
    tags
}

/// The tag as people type it in Omie: mostly as configured, sometimes all lower or upper case.
fn tag_variant(rng: &mut StdRng, tag: &str) -> String {
    match rng.random_range(0..100) {
        0..65 => tag.to_string(),
        65..85 => tag.to_lowercase(),
        _ => tag.to_uppercase(),
    }
}

fn has_tag(tags: &[Tag], wanted: &str) -> bool {
    tags.iter().any(|tag| tag.tag.eq_ignore_ascii_case(wanted))
}

/// The `email` field of a record and whether it holds a usable address.
fn email_field(rng: &mut StdRng, identity: &Identity, taken: &[String]) -> (String, bool) {
    let roll: f64 = rng.random();
    let mut threshold = MISSING_EMAIL_SHARE;
    if roll < threshold {
        return (String::new(), false);
    }
    threshold += MALFORMED_EMAIL_SHARE;
    if roll < threshold {
        return (malformed(rng, identity), false);
    }
    threshold += SEVERAL_EMAILS_SHARE;
    if roll < threshold {
        let separator = if rng.random_bool(0.7) { "; " } else { ", " };
        let second = format!("{}@{}", pick(rng, COMPANY_MAILBOXES), identity.domain);
        return (format!("{}{separator}{second}", address(rng, identity)), true);
    }
    threshold += DUPLICATE_EMAIL_SHARE;
    if roll < threshold && !taken.is_empty() {
        let shared = &taken[rng.random_range(0..taken.len())];
        let shared = if rng.random_bool(0.5) { shared.to_uppercase() } else { shared.clone() };
        return (shared, true);
    }
    threshold += MIXED_CASE_EMAIL_SHARE;
    let plain = address(rng, identity);
    if roll < threshold {
        return (mixed_case(rng, &plain), true);
    }
    (plain, true)
}

/// A valid lower-case address derived from the name.
fn address(rng: &mut StdRng, identity: &Identity) -> String {
    let (first, last) = (slug(identity.first), slug(identity.last));
    let local = match rng.random_range(0..10) {
        0..4 => format!("{first}.{last}"),
        4..6 => format!("{first}{last}"),
        6 => format!("{first}_{last}"),
        7 => format!("{}{last}", &first[..1]),
        8 => format!("{first}.{last}{}", rng.random_range(1..100)),
        _ if identity.person => format!("{first}{}", rng.random_range(1970..2006)),
        _ => pick(rng, COMPANY_MAILBOXES).to_string(),
    };
    format!("{local}@{}", identity.domain)
}

/// Addresses the way they get mistyped; none of them has a usable mailbox.
fn malformed(rng: &mut StdRng, identity: &Identity) -> String {
    let first = slug(identity.first);
    let domain = &identity.domain;
    let bare_host = domain.split('.').next().unwrap_or(domain);
    match rng.random_range(0..5) {
        0 => format!("{first}@@{}", &bare_host[..1]),
        1 => format!("{first}.{}@", slug(identity.last)),
        2 => format!("{first}.{domain}"),
        3 => format!("{first}@{bare_host}"),
        _ => format!("{} {}@{domain}", identity.first, identity.last),
    }
}

/// `Joao.Silva@Email-Demo.com.br` or all upper case, as older records often have.
fn mixed_case(rng: &mut StdRng, address: &str) -> String {
    if rng.random_bool(0.3) {
        return address.to_uppercase();
    }
    let mut capitalise = true;
    address
        .chars()
        .map(|character| {
            let out = if capitalise { character.to_ascii_uppercase() } else { character };
            capitalise = matches!(character, '.' | '@' | '-' | '_');
            out
        })
        .collect()
}

fn phone(rng: &mut StdRng, mobile: bool) -> String {
    let leading = if mobile { 9 } else { rng.random_range(2..6) };
    let digits = if mobile { 4 } else { 3 };
    let first = rng.random_range(0..10u32.pow(digits));
    format!("{leading}{first:0width$}-{:04}", rng.random_range(0..10_000), width = digits as usize)
}

/// Lower-case ASCII with `-` between words: `Auto Peças São Jorge` → `auto-pecas-sao-jorge`.
fn slug(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|character| match character.to_lowercase().next().unwrap_or(character) {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'ê' | 'è' => 'e',
            'í' | 'î' => 'i',
            'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ü' => 'u',
            'ç' => 'c',
            other if other.is_ascii_alphanumeric() => other,
            _ => ' ',
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join("-")
}

fn yes_no(value: bool) -> &'static str {
    if value { "S" } else { "N" }
}

/// A uniform choice from a list that is never empty.
fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rand::SeedableRng;
    use serde_json::Value;

    use super::*;
    use crate::documents::{is_valid_cnpj, is_valid_cpf};

    const SPEC: StreamSpec<'static> = StreamSpec { slug: "boreal", app_key: "4729105836201", tag: "Espresso" };

    fn stream(seed: u64, count: usize) -> Vec<Webhook> {
        tenant_stream(&SPEC, count, &mut StdRng::seed_from_u64(seed))
    }

    fn parsed(webhooks: &[Webhook]) -> Vec<Value> {
        webhooks.iter().map(|webhook| serde_json::from_slice(&webhook.body).expect("bodies are JSON")).collect()
    }

    /// The first occurrence of each record (`Incluido`, not redelivered): what the shares apply to.
    fn new_records(webhooks: &[Webhook]) -> Vec<Value> {
        parsed(webhooks)
            .into_iter()
            .zip(webhooks)
            .filter(|(body, webhook)| !webhook.redelivery && body["topic"] == TOPIC_INCLUDED)
            .map(|(body, _)| body["event"].clone())
            .collect()
    }

    /// A deliberately simpler check than the projector's: one `@`, a local part, a dotted domain,
    /// no spaces.
    fn looks_valid(address: &str) -> bool {
        let address = address.trim();
        match address.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !address.contains(char::is_whitespace)
            }
            None => false,
        }
    }

    fn carries_tag(event: &Value, wanted: &str) -> bool {
        let tags = event["tags"].as_array().expect("tags is an array");
        tags.iter().any(|tag| tag["tag"].as_str().is_some_and(|tag| tag.eq_ignore_ascii_case(wanted)))
    }

    fn share(part: usize, whole: usize) -> f64 {
        part as f64 / whole as f64
    }

    #[test]
    fn the_seed_reproduces_the_stream() {
        assert_eq!(stream(42, 800), stream(42, 800));
        assert_ne!(stream(42, 800), stream(43, 800));
    }

    #[test]
    fn bodies_have_omies_shape() {
        let webhooks = stream(1, 1200);
        assert_eq!(webhooks.len(), 1200);
        for (body, webhook) in parsed(&webhooks).iter().zip(&webhooks) {
            assert_eq!(body["messageId"], webhook.message_id.to_string());
            assert_eq!(webhook.message_id.get_version_num(), 4);
            assert!(
                [TOPIC_INCLUDED, TOPIC_CHANGED, TOPIC_DELETED]
                    .contains(&body["topic"].as_str().expect("a string field"))
            );
            assert_eq!(body["appKey"], SPEC.app_key);
            assert!(body["appHash"].as_str().expect("a string field").starts_with("boreal-"));
            assert_eq!(body["origin"], "omie-connect-2.0");
            assert!(body["author"]["userId"].is_u64());
            let event = &body["event"];
            assert!(event["codigo_cliente_omie"].is_i64());
            let document = event["cnpj_cpf"].as_str().expect("a string field");
            match event["pessoa_fisica"].as_str().expect("a string field") {
                "S" => assert!(is_valid_cpf(document), "{document}"),
                _ => assert!(is_valid_cnpj(document), "{document}"),
            }
            for tag in event["tags"].as_array().expect("an array field") {
                assert!(tag["tag"].is_string());
            }
        }
    }

    #[test]
    fn records_follow_omies_lifecycle() {
        let webhooks = stream(2, 2400);
        let bodies = parsed(&webhooks);
        let mut seen: HashMap<i64, &str> = HashMap::new();
        let mut first_bodies: HashMap<Uuid, &[u8]> = HashMap::new();
        for (body, webhook) in bodies.iter().zip(&webhooks) {
            if webhook.redelivery {
                assert_eq!(first_bodies[&webhook.message_id], webhook.body.as_slice(), "a redelivery repeats the body");
                continue;
            }
            assert!(first_bodies.insert(webhook.message_id, &webhook.body).is_none(), "fresh messageIds are unique");
            let code = body["event"]["codigo_cliente_omie"].as_i64().expect("an integer field");
            let topic = body["topic"].as_str().expect("a string field");
            match seen.get(&code) {
                None => assert_eq!(topic, TOPIC_INCLUDED, "a record starts with Incluido"),
                Some(previous) => {
                    assert_ne!(*previous, TOPIC_DELETED, "nothing follows Excluido");
                    assert_ne!(topic, TOPIC_INCLUDED, "Incluido comes once");
                }
            }
            seen.insert(code, topic);
        }
        let redeliveries = webhooks.iter().filter(|webhook| webhook.redelivery).count();
        assert!((share(redeliveries, webhooks.len()) - REDELIVERY_SHARE).abs() < 0.02, "{redeliveries}");
        assert!(seen.values().filter(|topic| **topic == TOPIC_DELETED).count() > 10);
    }

    #[test]
    fn shares_of_tags_and_bad_addresses_are_as_intended() {
        let records = new_records(&stream(3, 2400));
        let total = records.len();
        assert!(total > 800, "{total}");
        let emails: Vec<&str> = records.iter().map(|event| event["email"].as_str().expect("a string field")).collect();
        let tagged = records.iter().filter(|event| carries_tag(event, "espresso")).count();
        let missing = emails.iter().filter(|email| email.is_empty()).count();
        let several = emails.iter().filter(|email| email.contains([';', ','])).count();
        let malformed = emails
            .iter()
            .filter(|email| !email.is_empty() && !email.contains([';', ',']) && !looks_valid(email))
            .count();
        let mixed_case = emails.iter().filter(|email| email.chars().any(|c| c.is_ascii_uppercase())).count();
        let mut distinct = HashSet::new();
        let repeated =
            emails.iter().filter(|email| !email.is_empty() && !distinct.insert(email.to_lowercase())).count();

        assert!((share(tagged, total) - TAGGED_SHARE).abs() < 0.05, "tagged {tagged}/{total}");
        assert!((share(missing, total) - MISSING_EMAIL_SHARE).abs() < 0.025, "missing {missing}/{total}");
        assert!((share(malformed, total) - MALFORMED_EMAIL_SHARE).abs() < 0.025, "malformed {malformed}/{total}");
        assert!((share(several, total) - SEVERAL_EMAILS_SHARE).abs() < 0.03, "several {several}/{total}");
        assert!(share(mixed_case, total) > MIXED_CASE_EMAIL_SHARE / 2.0, "mixed case {mixed_case}/{total}");
        assert!(share(repeated, total) >= DUPLICATE_EMAIL_SHARE / 2.0, "repeated {repeated}/{total}");
    }

    #[test]
    fn tags_come_in_mixed_case_and_change_over_time() {
        let webhooks = stream(4, 2400);
        let bodies = parsed(&webhooks);
        let spellings: HashSet<&str> = bodies
            .iter()
            .flat_map(|body| body["event"]["tags"].as_array().expect("an array field"))
            .filter_map(|tag| tag["tag"].as_str())
            .filter(|tag| tag.eq_ignore_ascii_case("espresso"))
            .collect();
        assert_eq!(spellings, HashSet::from(["Espresso", "espresso", "ESPRESSO"]));

        let mut tagged_before: HashMap<i64, bool> = HashMap::new();
        let (mut untagged_later, mut retagged, mut inactivated) = (0, 0, 0);
        for body in &bodies {
            let event = &body["event"];
            let code = event["codigo_cliente_omie"].as_i64().expect("an integer field");
            let tagged = carries_tag(event, "espresso");
            match tagged_before.insert(code, tagged) {
                Some(true) if !tagged => untagged_later += 1,
                Some(false) if tagged => retagged += 1,
                _ => {}
            }
            if event["inativo"] == "S" {
                inactivated += 1;
            }
        }
        assert!(untagged_later > 10 && retagged > 10 && inactivated > 10, "{untagged_later} {retagged} {inactivated}");
    }

    #[test]
    fn helpers_shape_names_and_addresses() {
        assert_eq!(slug("Auto Peças São Jorge"), "auto-pecas-sao-jorge");
        assert_eq!(slug("Antônio"), "antonio");
        let mut rng = StdRng::seed_from_u64(5);
        let identity = Identity { first: "João", last: "Araújo", person: true, domain: "email-demo.com.br".into() };
        for _ in 0..100 {
            assert!(looks_valid(&address(&mut rng, &identity)));
            assert!(!looks_valid(&malformed(&mut rng, &identity)));
        }
        assert_eq!(
            mixed_case(&mut StdRng::seed_from_u64(0), "joao.silva@email-demo.com.br").to_lowercase(),
            "joao.silva@email-demo.com.br"
        );
    }
}

//! Realistic Omie companies, deterministic from a seed: Brazilian people and businesses with valid
//! CPF/CNPJ, e-mails as people type them (missing, malformed, several in one field, shared across
//! records, mixed case), tags `Cliente`/`Fornecedor` and the integration's tag in mixed case, some
//! records inactive. [`company`] makes a company to serve; [`Generator::change`] evolves one the
//! way its users do (included, changed, deleted), which is also how [`webhook_stream`] makes the
//! demo's webhooks. The shares below are what a company's numbers roughly reflect; the tests hold
//! the generator to them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Company;
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
/// New records already marked `inativo`.
pub const INACTIVE_SHARE: f64 = 0.03;
/// Of the changes, those that introduce a new record; the rest edit or delete one.
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

/// The company a generator works for.
#[derive(Debug, Clone, Copy)]
pub struct CompanySpec<'a> {
    /// Short lower-case name: the company's e-mail domain and `appHash` derive from it.
    pub slug: &'a str,
    pub app_key: &'a str,
    /// The tag the integration filters on; tagged records carry it in varying case.
    pub tag: &'a str,
}

/// One delivery: the exact bytes to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub message_id: Uuid,
    pub body: Vec<u8>,
    pub redelivery: bool,
}

/// What the generator wrote in a record's `email` field, known from how it was made rather than
/// by parsing it back: the ground truth tests hold the projector's verdicts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTruth {
    Missing,
    Malformed,
    /// The first address of the field, lower-cased.
    Usable(String),
}

/// How a generated record was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    pub tagged: bool,
    pub inactive: bool,
    pub email: EmailTruth,
}

/// A company ready to serve, with how each record was made.
pub struct GeneratedCompany {
    pub company: Company,
    pub truths: BTreeMap<i64, Truth>,
    /// Carries on where the company left off (codes, addresses), for live changes.
    pub generator: Generator,
}

/// A change to a company, with the record's state after it (its last state for a deletion).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Included(Value),
    Changed(Value),
    Deleted(Value),
}

impl Change {
    /// The webhook topic Omie sends for it.
    pub fn topic(&self) -> &'static str {
        match self {
            Change::Included(_) => TOPIC_INCLUDED,
            Change::Changed(_) => TOPIC_CHANGED,
            Change::Deleted(_) => TOPIC_DELETED,
        }
    }

    pub fn record(&self) -> &Value {
        match self {
            Change::Included(record) | Change::Changed(record) | Change::Deleted(record) => record,
        }
    }

    pub fn code(&self) -> i64 {
        self.record()["codigo_cliente_omie"].as_i64().unwrap_or_default()
    }

    /// Applies the change to a company's records.
    pub fn apply_to(&self, records: &mut BTreeMap<i64, Value>) {
        match self {
            Change::Included(record) | Change::Changed(record) => records.insert(self.code(), record.clone()),
            Change::Deleted(_) => records.remove(&self.code()),
        };
    }
}

/// A company of `size` records, the same for the same spec and seed.
pub fn company(spec: &CompanySpec<'_>, app_secret: &str, size: usize, seed: u64) -> GeneratedCompany {
    let mut generator = Generator::new(spec, seed);
    let mut records = BTreeMap::new();
    let mut truths = BTreeMap::new();
    for _ in 0..size {
        let (record, truth) = generator.record();
        let code = record["codigo_cliente_omie"].as_i64().unwrap_or_default();
        records.insert(code, record);
        truths.insert(code, truth);
    }
    GeneratedCompany {
        company: Company { app_key: spec.app_key.to_owned(), app_secret: app_secret.to_owned(), records },
        truths,
        generator,
    }
}

/// `count` deliveries of a company that starts empty and evolves (records included, changed,
/// deleted), with now and then a redelivery of a recent body under its messageId.
pub fn webhook_stream(spec: &CompanySpec<'_>, count: usize, seed: u64) -> Vec<Webhook> {
    let mut generator = Generator::new(spec, seed);
    let mut records = BTreeMap::new();
    let mut webhooks: Vec<Webhook> = Vec::with_capacity(count);
    while webhooks.len() < count {
        if !webhooks.is_empty() && generator.rng.random_bool(REDELIVERY_SHARE) {
            let recent: Vec<&Webhook> =
                webhooks.iter().rev().filter(|webhook| !webhook.redelivery).take(REDELIVERY_WINDOW).collect();
            let again = recent[generator.rng.random_range(0..recent.len())].clone();
            webhooks.push(Webhook { redelivery: true, ..again });
            continue;
        }
        let change = generator.change(&records);
        change.apply_to(&mut records);
        webhooks.push(generator.webhook(change.topic(), change.record()));
    }
    webhooks
}

/// Makes records and changes for one company; everything comes from its seeded rng.
pub struct Generator {
    rng: StdRng,
    tag: String,
    app_key: String,
    app_hash: String,
    company_domain: String,
    /// People who edit records in Omie's UI: webhooks name one of them as the author.
    authors: Vec<Value>,
    next_code: i64,
    made: usize,
    /// Plain valid addresses handed out so far, the pool duplicates are drawn from.
    addresses: Vec<String>,
}

impl Generator {
    pub fn new(spec: &CompanySpec<'_>, seed: u64) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let hash: String =
            (0..8).map(|_| char::from(pick(&mut rng, b"abcdefghijklmnopqrstuvwxyz0123456789"))).collect();
        let company_domain = format!("{}-demo.com.br", slug(spec.slug));
        let authors = AUTHOR_ROLES
            .iter()
            .map(|role| {
                let names = first_names(&mut rng);
                let first = pick(&mut rng, names);
                json!({
                    "email": format!("{}.{}@{company_domain}", slug(first), slug(role)),
                    "name": format!("{first} {role}"),
                    "userId": rng.random_range(1_000..100_000),
                })
            })
            .collect();
        Generator {
            tag: spec.tag.to_owned(),
            app_key: spec.app_key.to_owned(),
            app_hash: format!("{}-{hash}", slug(spec.slug)),
            company_domain,
            authors,
            // Ten digits like Omie's codes, below the fixtures' 86123004xx so generated records
            // never collide with the manifest's.
            next_code: rng.random_range(5_000_000_000..6_000_000_000),
            made: 0,
            addresses: Vec::new(),
            rng,
        }
    }

    /// A new record, as `ListarClientes` returns it (with `info`), and how it was made.
    pub fn record(&mut self) -> (Value, Truth) {
        let rng = &mut self.rng;
        self.next_code += rng.random_range(1..40);
        self.made += 1;
        let person = rng.random_bool(PERSON_SHARE);
        let identity = Identity::random(rng, person);
        let (razao_social, nome_fantasia) = if person {
            let names = if FEMALE_NAMES.contains(&identity.first) { FEMALE_NAMES } else { MALE_NAMES };
            let mut full = identity.first.to_string();
            let middle = pick(rng, names);
            if middle != identity.first && rng.random_bool(0.3) {
                full = format!("{full} {middle}");
            }
            if rng.random_bool(0.25) {
                full = format!("{full} {}", pick(rng, NAME_PARTICLES));
            }
            full = format!("{full} {}", identity.last);
            if rng.random_bool(0.4) {
                full = format!("{full} {}", pick(rng, SURNAMES));
            }
            (full, format!("{} {}", identity.first, identity.last))
        } else {
            let trade_name = trade_name(rng);
            (format!("{trade_name} {}", pick(rng, COMPANY_SUFFIXES)), trade_name)
        };
        let domain = domain_for(rng, person, &nome_fantasia);
        let (email, email_truth) = email_field(rng, &identity, &domain, &self.addresses);
        if let EmailTruth::Usable(address) = &email_truth
            && !email.contains([';', ','])
        {
            self.addresses.push(address.clone());
        }
        let tags = tags(rng, &self.tag);
        let inactive = rng.random_bool(INACTIVE_SHARE);
        let truth = Truth { tagged: has_tag(&tags, &self.tag), inactive, email: email_truth };
        let (cidade, estado, cep_prefix, ddd) = pick(rng, CITIES);
        let record = json!({
            "codigo_cliente_omie": self.next_code,
            "codigo_cliente_integracao": if rng.random_bool(0.8) { format!("CLI-{:06}", self.made) } else { String::new() },
            "razao_social": razao_social,
            "nome_fantasia": nome_fantasia,
            "cnpj_cpf": if person { random_cpf(rng) } else { random_cnpj(rng) },
            "pessoa_fisica": yes_no(person),
            "email": email,
            "inativo": yes_no(inactive),
            "bloquear_faturamento": "N",
            "exterior": "N",
            "tags": tags,
            "cidade": cidade,
            "estado": estado,
            "cep": format!("{cep_prefix}{:03}", rng.random_range(0..1000)),
            "endereco": pick(rng, STREETS),
            "endereco_numero": rng.random_range(1..3000).to_string(),
            "bairro": pick(rng, DISTRICTS),
            "telefone1_ddd": ddd,
            "telefone1_numero": phone(rng, person),
            "info": info(rng, &self.authors),
        });
        (record, truth)
    }

    /// The next change to `records`: a new record, or an edit or deletion of a live one.
    pub fn change(&mut self, records: &BTreeMap<i64, Value>) -> Change {
        if records.len() < MIN_LIVE_RECORDS || self.rng.random_bool(NEW_RECORD_SHARE) {
            let (mut record, _) = self.record();
            while records.contains_key(&self.next_code) {
                self.next_code += 1;
            }
            record["codigo_cliente_omie"] = json!(self.next_code);
            return Change::Included(record);
        }
        let rng = &mut self.rng;
        let position = rng.random_range(0..records.len());
        let Some(mut record) = records.values().nth(position).cloned() else {
            unreachable!("position is below the number of records")
        };
        let roll = rng.random_range(0..100);
        match roll {
            0..5 => return Change::Deleted(record),
            5..15 => {
                let inactive = record["inativo"] == "S";
                record["inativo"] = json!(yes_no(!inactive));
            }
            15..30 => {
                let mut tags: Vec<Value> = record["tags"].as_array().cloned().unwrap_or_default();
                if tags.iter().any(|tag| is_tag(tag, &self.tag)) {
                    tags.retain(|tag| !is_tag(tag, &self.tag));
                } else {
                    tags.push(json!({"tag": tag_variant(rng, &self.tag)}));
                }
                record["tags"] = json!(tags);
            }
            30..50 => {
                // Someone saw the import error and fixed the address, or the contact changed.
                let person = record["pessoa_fisica"] == "S";
                let identity = Identity::random(rng, person);
                let trade_name = record["nome_fantasia"].as_str().unwrap_or_default().to_owned();
                let domain = domain_for(rng, person, &trade_name);
                let email = if rng.random_bool(0.6) {
                    address(rng, &identity, &domain)
                } else {
                    email_field(rng, &identity, &domain, &self.addresses).0
                };
                record["email"] = json!(email);
            }
            _ if rng.random_bool(0.5) => record["telefone1_numero"] = json!(phone(rng, record["pessoa_fisica"] == "S")),
            _ => {
                record["endereco"] = json!(pick(rng, STREETS));
                record["endereco_numero"] = json!(rng.random_range(1..3000).to_string());
                record["bairro"] = json!(pick(rng, DISTRICTS));
            }
        }
        Change::Changed(record)
    }

    /// A person from the company's Omie users, as a webhook's `author`.
    pub fn author(&mut self) -> Value {
        self.authors[self.rng.random_range(0..self.authors.len())].clone()
    }

    /// The company's `appHash`, `<slug>-<8 chars>`.
    pub fn app_hash(&self) -> &str {
        &self.app_hash
    }

    /// The webhook Omie sends for `record` (without `info`, which webhooks leave out).
    pub fn webhook(&mut self, topic: &str, record: &Value) -> Webhook {
        let message_id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let body = webhook_body(message_id, topic, record, &self.author(), &self.app_key, &self.app_hash);
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Webhook { message_id, body, redelivery: false }
    }

    /// The company's own domain, where its staff's addresses live.
    pub fn company_domain(&self) -> &str {
        &self.company_domain
    }
}

/// A `ClienteFornecedor.*` webhook body as Omie sends it.
pub fn webhook_body(
    message_id: Uuid,
    topic: &str,
    record: &Value,
    author: &Value,
    app_key: &str,
    app_hash: &str,
) -> Value {
    let mut event = record.clone();
    if let Some(fields) = event.as_object_mut() {
        fields.remove("info");
    }
    json!({
        "messageId": message_id,
        "topic": topic,
        "event": event,
        "author": author,
        "appKey": app_key,
        "appHash": app_hash,
        "origin": "omie-connect-2.0",
    })
}

/// Who an address is derived from: the person, or a company's contact.
struct Identity {
    first: &'static str,
    last: &'static str,
    person: bool,
}

impl Identity {
    fn random(rng: &mut StdRng, person: bool) -> Identity {
        let names = first_names(rng);
        let first = pick(rng, names);
        Identity { first, last: pick(rng, SURNAMES), person }
    }
}

fn trade_name(rng: &mut StdRng) -> String {
    let kind = pick(rng, COMPANY_KINDS);
    let core = if rng.random_bool(0.5) { pick(rng, SURNAMES) } else { pick(rng, COMPANY_CORES) };
    format!("{kind} {core}")
}

/// A person's address is at a provider; a company's at its own domain.
fn domain_for(rng: &mut StdRng, person: bool, trade_name: &str) -> String {
    if person { pick(rng, PERSON_DOMAINS).to_string() } else { format!("{}-demo.com.br", slug(trade_name)) }
}

/// `info` as `ListarClientes` returns it: included and last changed some day between 2018 and
/// the end of November 2026, Brasília time, by one of the company's users.
fn info(rng: &mut StdRng, authors: &[Value]) -> Value {
    let first_day = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap_or_default();
    let last_day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default();
    let span = (last_day - first_day).num_days();
    let included = first_day + chrono::Days::new(rng.random_range(0..=span) as u64);
    let changed = included + chrono::Days::new(rng.random_range(0..=(last_day - included).num_days()) as u64);
    let user = |rng: &mut StdRng| {
        let author = &authors[rng.random_range(0..authors.len())];
        author["email"].as_str().and_then(|email| email.split('@').next()).unwrap_or("WEBSERVICE").to_uppercase()
    };
    let time = |rng: &mut StdRng| {
        format!("{:02}:{:02}:{:02}", rng.random_range(7..20), rng.random_range(0..60), rng.random_range(0..60))
    };
    json!({
        "dInc": included.format("%d/%m/%Y").to_string(),
        "hInc": time(rng),
        "uInc": user(rng),
        "dAlt": changed.format("%d/%m/%Y").to_string(),
        "hAlt": time(rng),
        "uAlt": user(rng),
        "cImpAPI": yes_no(rng.random_bool(0.1)),
    })
}

/// Men's or women's names, so a middle name matches the first.
fn first_names(rng: &mut StdRng) -> &'static [&'static str] {
    if rng.random_bool(0.5) { MALE_NAMES } else { FEMALE_NAMES }
}

fn tags(rng: &mut StdRng, tag: &str) -> Vec<Value> {
    let mut tags: Vec<Value> =
        OTHER_TAGS.iter().filter(|_| rng.random_bool(0.4)).map(|other| json!({"tag": other})).collect();
    if rng.random_bool(TAGGED_SHARE) {
        let position = rng.random_range(0..=tags.len());
        tags.insert(position, json!({"tag": tag_variant(rng, tag)}));
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

fn is_tag(tag: &Value, wanted: &str) -> bool {
    tag["tag"].as_str().is_some_and(|tag| tag.eq_ignore_ascii_case(wanted))
}

fn has_tag(tags: &[Value], wanted: &str) -> bool {
    tags.iter().any(|tag| is_tag(tag, wanted))
}

/// The `email` field of a record and what it holds.
fn email_field(rng: &mut StdRng, identity: &Identity, domain: &str, taken: &[String]) -> (String, EmailTruth) {
    let roll: f64 = rng.random();
    let mut threshold = MISSING_EMAIL_SHARE;
    if roll < threshold {
        return (String::new(), EmailTruth::Missing);
    }
    threshold += MALFORMED_EMAIL_SHARE;
    if roll < threshold {
        return (malformed(rng, identity, domain), EmailTruth::Malformed);
    }
    threshold += SEVERAL_EMAILS_SHARE;
    if roll < threshold {
        let separator = if rng.random_bool(0.7) { "; " } else { ", " };
        let first = address(rng, identity, domain);
        let second = format!("{}@{domain}", pick(rng, COMPANY_MAILBOXES));
        return (format!("{first}{separator}{second}"), EmailTruth::Usable(first));
    }
    threshold += DUPLICATE_EMAIL_SHARE;
    if roll < threshold && !taken.is_empty() {
        let shared = taken[rng.random_range(0..taken.len())].clone();
        let field = if rng.random_bool(0.5) { shared.to_uppercase() } else { shared.clone() };
        return (field, EmailTruth::Usable(shared));
    }
    threshold += MIXED_CASE_EMAIL_SHARE;
    let plain = address(rng, identity, domain);
    let field = if roll < threshold { mixed_case(rng, &plain) } else { plain.clone() };
    (field, EmailTruth::Usable(plain))
}

/// A valid lower-case address derived from the name.
fn address(rng: &mut StdRng, identity: &Identity, domain: &str) -> String {
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
    format!("{local}@{domain}")
}

/// Addresses the way they get mistyped; none of them has a usable mailbox.
fn malformed(rng: &mut StdRng, identity: &Identity, domain: &str) -> String {
    let first = slug(identity.first);
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

    use super::*;
    use crate::documents::{is_valid_cnpj, is_valid_cpf};

    const SPEC: CompanySpec<'static> = CompanySpec { slug: "boreal", app_key: "4729105836201", tag: "Espresso" };

    fn stream(seed: u64, count: usize) -> Vec<Webhook> {
        webhook_stream(&SPEC, count, seed)
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
        let identity = Identity { first: "João", last: "Araújo", person: true };
        for _ in 0..100 {
            assert!(looks_valid(&address(&mut rng, &identity, "email-demo.com.br")));
            assert!(!looks_valid(&malformed(&mut rng, &identity, "email-demo.com.br")));
        }
        assert_eq!(
            mixed_case(&mut StdRng::seed_from_u64(0), "joao.silva@email-demo.com.br").to_lowercase(),
            "joao.silva@email-demo.com.br"
        );
    }

    #[test]
    fn a_company_is_reproducible_and_its_truths_describe_its_records() {
        let generated = company(&SPEC, "secret", 3000, 9);
        let again = company(&SPEC, "secret", 3000, 9);
        assert_eq!(generated.company.records, again.company.records);
        assert_eq!(generated.company.records.len(), 3000);
        assert_eq!(generated.truths.len(), 3000);

        let mut usable = 0;
        for (code, record) in &generated.company.records {
            let truth = &generated.truths[code];
            assert_eq!(record["codigo_cliente_omie"], *code);
            assert_eq!(truth.tagged, carries_tag(record, "espresso"), "{record}");
            assert_eq!(truth.inactive, record["inativo"] == "S");
            let email = record["email"].as_str().expect("a string field");
            match &truth.email {
                EmailTruth::Missing => assert_eq!(email, ""),
                EmailTruth::Malformed => assert!(!looks_valid(email), "{email}"),
                EmailTruth::Usable(address) => {
                    usable += 1;
                    let first = email.split([';', ',']).next().expect("one part at least").trim();
                    assert_eq!(&first.to_lowercase(), address);
                    assert!(looks_valid(address), "{address}");
                }
            }
            let info = &record["info"];
            for key in ["dInc", "dAlt"] {
                let date = info[key].as_str().expect("a date");
                assert!(NaiveDate::parse_from_str(date, "%d/%m/%Y").is_ok(), "{date}");
            }
        }
        let inactive = generated.truths.values().filter(|truth| truth.inactive).count();
        assert!((share(inactive, 3000) - INACTIVE_SHARE).abs() < 0.015, "inactive {inactive}");
        assert!(share(usable, 3000) > 0.85, "usable {usable}");
    }

    #[test]
    fn changes_evolve_a_company_without_reusing_codes() {
        let GeneratedCompany { company, mut generator, .. } = company(&SPEC, "secret", 200, 11);
        let mut records = company.records;
        let original: BTreeMap<i64, Value> = records.clone();
        let mut topics: HashMap<&str, usize> = HashMap::new();
        for _ in 0..500 {
            let change = generator.change(&records);
            match &change {
                Change::Included(record) => assert!(!records.contains_key(&change.code()), "{record}"),
                Change::Changed(_) | Change::Deleted(_) => assert!(records.contains_key(&change.code())),
            }
            *topics.entry(change.topic()).or_default() += 1;
            change.apply_to(&mut records);
        }
        assert!(topics.len() == 3, "{topics:?}");
        assert_ne!(records, original);
    }
}

//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`.
//!
//! Generated from the code: every route is declared once, with its `#[utoipa::path]`, through
//! utoipa-axum's `routes!`, which both registers the handler and records its operation, and the
//! bodies are the handlers' own types (`ToSchema`). This module adds only what belongs to no
//! single route: the info, the tags, the security schemes, the shared error responses, and the
//! `Idempotency-Key` header. The document is built once per process and then served as bytes.
//! Must never describe a route that is not served, nor leave a served one out: both come from
//! `super::api`, the one function that composes the routes.

use std::sync::OnceLock;

use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToResponse, ToSchema};

use super::error::ErrorBody;
use super::extractor::{ACCESS_COOKIE, API_KEY_HEADER, CSRF_HEADER, REFRESH_COOKIE};

/// Everything in the document that no single route declares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "predex API",
        version = env!("CARGO_PKG_VERSION"),
        description = include_str!("openapi.md"),
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "auth", description = "Accounts, login sessions and their cookies."),
        (name = "api-keys", description = "Keys for bots, managed from a login session."),
        (name = "markets", description = "Markets and their admin lifecycle."),
        (name = "market-data", description = "Public books, trades, tickers and candles."),
        (name = "orders", description = "Placing, amending and cancelling orders."),
        (name = "portfolio", description = "Balances, positions, fills, settlements, split and merge."),
        (name = "transfers", description = "Cash in and out."),
        (name = "streams", description = "The real-time WebSocket."),
        (name = "ops", description = "Health, readiness, metrics and this document."),
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            RateLimited,
            Unavailable,
            Internal,
        ),
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// The security scheme names the operations' `security(...)` lists refer to.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The `accessToken` of a login or refresh answer (15 minutes by default).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                ACCESS_COOKIE,
                "The HTTP-only access-token cookie a login sets, for browsers. Writes \
                 authenticated by it also need `csrfToken`.",
            ))),
        );
        components.add_security_scheme(
            "csrfToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The session's CSRF token (the readable csrf cookie's value, also the login \
                 answer's `csrfToken`), required with the cookie on every write.",
            ))),
        );
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                API_KEY_HEADER,
                "An API key (`pdx_...`) from `POST /v1/api-keys`.",
            ))),
        );
        components.add_security_scheme(
            "refreshCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                REFRESH_COOKIE,
                "The HTTP-only refresh-token cookie, sent only to `/v1/auth`.",
            ))),
        );
    }
}

/// The `Idempotency-Key` header of authenticated POSTs outside `/v1/auth`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters, scoped to the caller. The first request with a key
    /// runs and its answer is kept for a day; a retry with the same request gets that answer
    /// again (`Idempotent-Replayed: true`); the same key with another request is a 422
    /// `IDEMPOTENCY_KEY_REUSED`; while the first still runs, a 409 `CONFLICT`. A refusal to
    /// run (429, or a 5xx before anything was committed) is not kept, so a retry runs.
    #[param(rename = "Idempotency-Key", value_type = String, required = false)]
    #[param(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// A header a shared response carries: its name, its value's type, what it says.
type HeaderDoc = (&'static str, Type, &'static str);

/// A reusable error response: its description, an example body, and an optional header.
fn error_response(
    description: &str,
    code: &str,
    message: &str,
    header: Option<HeaderDoc>,
) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .example(Some(
            json!({ "error": { "code": code, "message": message } }),
        ))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    if let Some((name, value_type, about)) = header {
        let schema = ObjectBuilder::new().schema_type(value_type);
        let header = HeaderBuilder::new()
            .schema(schema)
            .description(Some(about))
            .build();
        response = response.header(name, header);
    }
    response.build()
}

const RETRY_AFTER: HeaderDoc = (
    "Retry-After",
    Type::Integer,
    "Seconds to wait before retrying.",
);

/// Declares a unit type for each shared error response, named as the document names it.
macro_rules! error_responses {
    ($($name:ident => ($description:expr, $code:literal, $message:literal, $header:expr);)+) => {
        $(
            #[doc = concat!("The shared `", stringify!($name), "` response.")]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    let response = error_response($description, $code, $message, $header);
                    (stringify!($name), RefOr::T(response))
                }
            }
        )+
    };
}

error_responses! {
    BadRequest => (
        "`BAD_REQUEST`: the body is not the JSON this operation takes (malformed, a wrong type, a \
         missing or unknown field) or the query string does not parse.",
        "BAD_REQUEST", "invalid JSON body", None
    );
    Unauthenticated => (
        "`UNAUTHENTICATED`: no credentials, or credentials that are invalid, expired or revoked \
         (with `WWW-Authenticate: Bearer`).",
        "UNAUTHENTICATED", "authentication required",
        Some(("WWW-Authenticate", Type::String, "`Bearer`."))
    );
    Forbidden => (
        "`FORBIDDEN` (the caller may not do this: admin only, or a login session needed rather \
         than an API key) or `CSRF_FAILED` (a cookie-authenticated write without the session's \
         `X-CSRF-Token`).",
        "FORBIDDEN", "admin only", None
    );
    NotFound => (
        "`NOT_FOUND`: no such thing, or one that belongs to another user (its existence is not \
         revealed); `UNKNOWN_MARKET` / `UNKNOWN_USER` where the engine names it.",
        "NOT_FOUND", "not found", None
    );
    Conflict => (
        "`CONFLICT` (taken, or a request with this `Idempotency-Key` still running) or an \
         engine conflict by name (`SLUG_TAKEN`, `INVALID_MARKET_TRANSITION`).",
        "CONFLICT", "a request with this Idempotency-Key is still running", None
    );
    PayloadTooLarge => (
        "`PAYLOAD_TOO_LARGE`: the body is over 64 KiB.",
        "PAYLOAD_TOO_LARGE", "request body too large", None
    );
    UnsupportedMediaType => (
        "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `Content-Type: application/json`.",
        "UNSUPPORTED_MEDIA_TYPE",
        "expected a JSON body with Content-Type: application/json",
        None
    );
    Unprocessable => (
        "`VALIDATION_FAILED` (a well-formed field breaks a rule; `details.field` names it), \
         `IDEMPOTENCY_KEY_REUSED` (the same key sent with another request), or an engine \
         reject by name (`INSUFFICIENT_FUNDS`, `PRICE_OFF_TICK`, `MARKET_NOT_OPEN`, ...).",
        "VALIDATION_FAILED", "amount: must be a decimal string like \"100.00\"", None
    );
    RateLimited => (
        "`RATE_LIMITED`: too many requests (per peer address on auth routes, per user on order \
         routes); retry after `Retry-After` seconds.",
        "RATE_LIMITED", "too many requests; retry in 1 s",
        Some(RETRY_AFTER)
    );
    Unavailable => (
        "`OVERLOADED` (the exchange's queue is full) or `UNAVAILABLE` (writes are stopped \
         until a restart), both with `Retry-After` seconds; or `READ_ONLY` (this instance is \
         a read-only gateway: send the request to the primary).",
        "OVERLOADED", "the exchange is busy; retry shortly",
        Some(RETRY_AFTER)
    );
    Internal => (
        "`INTERNAL`: a server fault; the details are logged, never sent.",
        "INTERNAL", "internal error", None
    );
}

/// The document, built on first use from the same routes the router serves.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, mut document) = super::api(super::v1_routes()).split_for_parts();
        optional_bodies_are_absent_not_null(&mut document);
        document
    })
}

/// Utoipa writes an optional body (`Option<T>`) as "T or null"; ours are "T or nothing": an
/// empty body is accepted, a JSON `null` is a 400. The body is already marked not required, so
/// only the null alternative goes.
fn optional_bodies_are_absent_not_null(document: &mut utoipa::openapi::OpenApi) {
    let operations = document
        .paths
        .paths
        .values_mut()
        .flat_map(|item| {
            [
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ]
        })
        .flatten();
    for operation in operations {
        let Some(body) = operation.request_body.as_mut() else {
            continue;
        };
        if body.required == Some(utoipa::openapi::Required::True) {
            continue;
        }
        for content in body.content.values_mut() {
            let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                continue;
            };
            let not_null: Vec<&RefOr<Schema>> =
                one_of.items.iter().filter(|item| !is_null(item)).collect();
            if let [only] = not_null[..] {
                content.schema = Some(only.clone());
            }
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(object))
        if object.schema_type == SchemaType::Type(Type::Null))
}

/// The document as JSON, serialized once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serializing plain data structures cannot fail; a panic here is a bug caught by the
        // tests, which serve the document on every run.
        serde_json::to_string(document()).expect("the OpenAPI document serializes")
    })
}

/// The document as indented JSON, for people and for validators' line numbers.
pub fn pretty_json() -> String {
    serde_json::to_string_pretty(document()).expect("the OpenAPI document serializes")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use serde_json::Value;

    /// The document as plain JSON, as clients read it.
    fn document() -> Value {
        serde_json::from_str(super::json()).expect("the document is JSON")
    }

    /// Every (path, method, operation) of the document.
    fn operations(document: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                all.push((path.clone(), method.clone(), operation.clone()));
            }
        }
        all
    }

    fn statuses(operation: &Value) -> BTreeSet<String> {
        operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .cloned()
            .collect()
    }

    fn is_public(operation: &Value) -> bool {
        operation["security"]
            .as_array()
            .expect("every operation states its security")
            .iter()
            .any(|requirement| requirement.as_object().is_some_and(|r| r.is_empty()))
    }

    fn has_idempotency_key(operation: &Value) -> bool {
        operation["parameters"]
            .as_array()
            .is_some_and(|parameters| {
                parameters
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
            })
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_is_tagged_and_summarized() {
        let document = document();
        let mut ids = BTreeSet::new();
        for (path, method, operation) in operations(&document) {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "{id} twice ({method} {path})");
            assert_eq!(
                operation["tags"].as_array().map(Vec::len),
                Some(1),
                "{path}"
            );
            assert!(operation["summary"].is_string(), "{method} {path}");
        }
        assert!(ids.len() >= 40, "{ids:?}");
    }

    /// The idempotency layer keys every POST under `/v1` but `/v1/auth/*` that carries a user;
    /// the document must offer the header on exactly those.
    #[test]
    fn exactly_the_authenticated_posts_outside_auth_take_an_idempotency_key() {
        let document = document();
        for (path, method, operation) in operations(&document) {
            let keyed = method == "post"
                && path.starts_with("/v1/")
                && !path.starts_with("/v1/auth/")
                && !is_public(&operation);
            assert_eq!(has_idempotency_key(&operation), keyed, "{method} {path}");
            if keyed {
                let statuses = statuses(&operation);
                for status in ["409", "413", "422"] {
                    assert!(statuses.contains(status), "{method} {path} lacks {status}");
                }
            }
        }
    }

    /// What every handler can answer whatever it does: the failures of its extractors.
    #[test]
    fn every_operation_documents_the_failures_its_extractors_can_produce() {
        let document = document();
        for (path, method, operation) in operations(&document) {
            let statuses = statuses(&operation);
            // A WebSocket's success is its upgrade.
            assert!(
                statuses
                    .iter()
                    .any(|status| status.starts_with('2') || status == "101"),
                "{method} {path} has no success"
            );
            if !is_public(&operation) {
                assert!(statuses.contains("401"), "{method} {path} lacks 401");
            }
            if !path.starts_with("/v1/") {
                continue;
            }
            assert!(statuses.contains("500"), "{method} {path} lacks 500");
            let body = &operation["requestBody"];
            if body.is_object() {
                for status in ["400", "413"] {
                    assert!(statuses.contains(status), "{method} {path} lacks {status}");
                }
                // A required body is read by `ApiJson`, which wants a JSON content type.
                if body["required"] == true {
                    assert!(statuses.contains("415"), "{method} {path} lacks 415");
                }
            }
            let queried = operation["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            // `ApiQuery` refuses a query that does not parse (what it may hold is the handler's).
            if queried {
                assert!(statuses.contains("400"), "{method} {path} lacks 400");
            }
        }
    }

    /// An optional body may be left out but is never `null` (`OptionalJson` refuses it).
    #[test]
    fn no_request_body_offers_null() {
        let document = document();
        for (path, method, operation) in operations(&document) {
            let Some(content) = operation["requestBody"]["content"].as_object() else {
                continue;
            };
            for media in content.values() {
                let schema = media["schema"].to_string();
                assert!(!schema.contains(r#""null""#), "{method} {path}: {schema}");
            }
        }
    }

    #[test]
    fn the_info_names_the_crate_version_and_the_license() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(document["info"]["license"]["identifier"], "Apache-2.0");
        let schemes = document["components"]["securitySchemes"]
            .as_object()
            .expect("security schemes");
        for scheme in [
            "bearerAuth",
            "cookieAuth",
            "csrfToken",
            "apiKeyAuth",
            "refreshCookie",
        ] {
            assert!(schemes.contains_key(scheme), "{scheme}");
        }
    }

    /// Documents merge schemas by name, silently keeping the first: two different types under
    /// one name would leave one of them described wrongly. Each domain's own names must
    /// agree wherever they meet.
    #[test]
    fn no_two_domains_give_one_schema_name_to_different_schemas() {
        let routers = [
            ("auth", crate::auth::router()),
            ("transfers", crate::transfers::router()),
            ("markets", crate::markets::router()),
            ("orders", crate::orders::router()),
            ("portfolio", crate::portfolio::router()),
            ("ws", crate::ws::router()),
            ("ops", super::super::ops::router()),
        ];
        let mut seen: BTreeMap<String, (&str, Value)> = BTreeMap::new();
        for (domain, router) in routers {
            let schemas = router
                .into_openapi()
                .components
                .map(|components| components.schemas)
                .unwrap_or_default();
            for (name, schema) in schemas {
                let schema = serde_json::to_value(schema).expect("a schema serializes");
                if let Some((other, earlier)) = seen.get(&name) {
                    assert_eq!(earlier, &schema, "{name}: {other} and {domain} differ");
                } else {
                    seen.insert(name, (domain, schema));
                }
            }
        }
        assert!(seen.contains_key("Market") && seen.contains_key("Order"));
    }

    /// Routes reach the router only through utoipa-axum's `routes!`, which documents them as
    /// it registers them; any other way (axum's `.route`, a nested service) would serve a path
    /// the document does not list. So no source file of the server may use one.
    #[test]
    fn no_route_is_registered_around_the_document() {
        let forbidden = [
            ".route(",
            ".route_service(",
            ".nest_service(",
            ".fallback_service(",
            "routing::",
        ];
        let this_file = Path::new(file!())
            .file_name()
            .expect("a file name")
            .to_owned();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        let mut pending = vec![src];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("a source directory") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let is_this_file =
                    path.ends_with(Path::new("http").join(&this_file)) && path.is_file();
                if path.extension().is_none_or(|ext| ext != "rs") || is_this_file {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a source file");
                for pattern in forbidden {
                    assert!(
                        !text.contains(pattern),
                        "{} uses `{pattern}`: register routes with `routes!`",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} files checked");
    }
}

//! The OpenAPI document against the server that serves it: it is OpenAPI 3.1 and every `$ref`
//! in it resolves; every documented operation is served (and nothing else on its path), and
//! answers only statuses it documents, with the security it states; and real answers of every
//! operation match their documented schemas, checked strictly (an undocumented field fails).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, spawn_app_with, token, Backend, TestApp, PASSWORD};

crate::on_both_databases!(
    the_document_is_openapi_3_1_and_every_ref_resolves,
    every_documented_operation_is_served_and_answers_as_documented,
    real_answers_of_every_operation_match_their_schemas,
);

/// Stands in for every `{param}` of a path: a UUID that names nothing.
const NOBODY: &str = "00000000-0000-4000-8000-000000000000";
/// The methods the API may use. PUT is not among them, so a PUT tells a routed path (405)
/// from an unrouted one (404).
const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PATCH, Method::DELETE];

/// The served document, and which operations a test has seen succeed.
struct Spec {
    document: Value,
    /// The document's schemas made strict: every object schema refuses properties it does
    /// not list, so an answer with an undocumented field fails validation.
    strict_components: Value,
    succeeded: BTreeSet<(String, String)>,
}

impl Spec {
    async fn fetch(app: &TestApp) -> Spec {
        let answer = app.get("/openapi.json", None).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["content-type"], "application/json");
        let document: Value = answer.json().await.expect("the document is JSON");
        let mut strict_components = document["components"].clone();
        if let Some(schemas) = strict_components["schemas"].as_object_mut() {
            for schema in schemas.values_mut() {
                forbid_unlisted_properties(schema);
            }
        }
        Spec {
            document,
            strict_components,
            succeeded: BTreeSet::new(),
        }
    }

    /// Every documented (path, method), methods in lower case as the document spells them.
    fn operations(&self) -> Vec<(String, String)> {
        let paths = self.document["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().expect("a path item").keys();
                methods.map(move |method| (path.clone(), method.clone()))
            })
            .collect()
    }

    fn operation(&self, path: &str, method: &Method) -> Option<&Value> {
        let operation = &self.document["paths"][path][method.as_str().to_lowercase()];
        operation.is_object().then_some(operation)
    }

    /// The documented response for `status`, `$ref`s to shared responses followed.
    fn response(&self, path: &str, method: &Method, status: StatusCode) -> Option<&Value> {
        let operation = self.operation(path, method)?;
        let response = &operation["responses"][status.as_str()];
        let response = match response["$ref"].as_str() {
            Some(reference) => resolve(&self.document, reference).expect("a shared response"),
            None => response,
        };
        response.is_object().then_some(response)
    }

    /// Asserts that `answer` is one `method path` documents, content type and body included,
    /// and returns the body (`Null` when there is none). `path` is the documented template.
    async fn check(&mut self, method: Method, path: &str, answer: reqwest::Response) -> Value {
        let status = answer.status();
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|value| value.to_str().expect("ASCII").to_owned());
        let text = answer.text().await.expect("a body");
        let documented = self
            .response(path, &method, status)
            .unwrap_or_else(|| panic!("{method} {path} answered {status}, undocumented: {text}"))
            .clone();
        let Some(content) = documented["content"].as_object() else {
            assert!(
                text.is_empty(),
                "{method} {path} {status}: a body it does not document"
            );
            self.record(&method, path, status);
            return Value::Null;
        };
        let content_type = content_type.expect("a content type");
        let media = content.get(&content_type).unwrap_or_else(|| {
            panic!("{method} {path} {status}: {content_type} is not documented")
        });
        if !content_type.starts_with("application/json") {
            self.record(&method, path, status);
            return Value::String(text);
        }
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        self.validate(
            &media["schema"],
            &body,
            &format!("{method} {path} {status}"),
        );
        self.record(&method, path, status);
        body
    }

    /// A WebSocket upgrade's answer (reqwest does not upgrade): its status must be documented.
    fn check_upgrade(&mut self, path: &str, status: StatusCode) {
        assert!(
            self.response(path, &Method::GET, status).is_some(),
            "GET {path} answered {status}, undocumented"
        );
        self.record(&Method::GET, path, status);
    }

    fn record(&mut self, method: &Method, path: &str, status: StatusCode) {
        // A WebSocket's success is its upgrade.
        if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
            let method = method.as_str().to_lowercase();
            self.succeeded.insert((path.to_owned(), method));
        }
    }

    fn validate(&self, schema: &Value, body: &Value, what: &str) {
        let mut root = schema.clone();
        forbid_unlisted_properties(&mut root);
        root["components"] = self.strict_components.clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|error| panic!("{what}: the schema does not compile: {error}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:#?}\nin {body:#}");
    }
}

/// `additionalProperties: false` on every object schema that lists its properties and says
/// nothing of others, however deeply nested.
fn forbid_unlisted_properties(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if object.contains_key("properties") && !object.contains_key("additionalProperties") {
                object.insert("additionalProperties".into(), json!(false));
            }
            object.values_mut().for_each(forbid_unlisted_properties);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_unlisted_properties),
        _ => {}
    }
}

/// The value a local reference (`#/a/b`) points at.
fn resolve<'d>(document: &'d Value, reference: &str) -> Option<&'d Value> {
    document.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` anywhere in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                found.push(reference.clone());
            }
            object.values().for_each(|value| references(value, found));
        }
        Value::Array(items) => items.iter().for_each(|value| references(value, found)),
        _ => {}
    }
}

/// `template` with every `{param}` replaced by `NOBODY`.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                NOBODY
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_public(operation: &Value) -> bool {
    operation["security"]
        .as_array()
        .expect("every operation states its security")
        .iter()
        .any(|requirement| requirement.as_object().is_some_and(|r| r.is_empty()))
}

async fn the_document_is_openapi_3_1_and_every_ref_resolves(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let spec = Spec::fetch(&app).await;
    let document = &spec.document;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(document["info"]["license"]["identifier"], "Apache-2.0");
    let mut found = Vec::new();
    references(document, &mut found);
    assert!(found.len() > 100, "only {} references", found.len());
    for reference in &found {
        assert!(reference.starts_with("#/components/"), "{reference}");
        assert!(
            resolve(document, reference).is_some_and(Value::is_object),
            "{reference} resolves to nothing"
        );
    }
    // The fixed points of the API are there: ops at the root, the rest under /v1.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/orders",
    ] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
    let again: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert_eq!(&again, document, "the document is the same every time");
}

async fn every_documented_operation_is_served_and_answers_as_documented(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut spec = Spec::fetch(&app).await;
    // The control: a path nobody serves is the router's 404, whatever the method.
    let unrouted = app.send(Method::PUT, "/v1/no-such-route", None, None).await;
    assert_eq!(
        error_code(unrouted, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    let operations = spec.operations();
    let paths: BTreeSet<String> = operations.iter().map(|(path, _)| path.clone()).collect();
    for (path, method) in &operations {
        assert!(
            ["get", "post", "patch", "delete"].contains(&method.as_str()),
            "{method} {path}: outside the methods this test probes"
        );
    }
    for path in &paths {
        let url = concrete(path);
        let put = app.send(Method::PUT, &url, None, None).await;
        assert_eq!(
            error_code(put, StatusCode::METHOD_NOT_ALLOWED).await,
            "METHOD_NOT_ALLOWED",
            "{path} is documented but not routed"
        );
        for method in METHODS {
            let answer = app.send(method.clone(), &url, None, None).await;
            let status = answer.status();
            let Some(operation) = spec.operation(path, &method).cloned() else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
                continue;
            };
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if !is_public(&operation) {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            } else if method == Method::GET {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
            spec.check(method, path, answer).await;
        }
    }
    assert!(paths.len() >= 35, "{paths:?}");
}

/// A user's access token, refresh token and id.
struct Trader {
    access: String,
    refresh: String,
    id: String,
}

async fn real_answers_of_every_operation_match_their_schemas(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.faucet = Some(server::config::FaucetConfig {
            per_call_micros: 50_000_000,
            per_day_micros: 500_000_000,
        });
    })
    .await
    else {
        return;
    };
    let mut spec = Spec::fetch(&app).await;
    let served = app.get("/openapi.json", None).await;
    spec.check(Method::GET, "/openapi.json", served).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = app.get(path, None).await;
        spec.check(Method::GET, path, answer).await;
    }

    let alice = sign_up(&app, &mut spec, "alice@example.com").await;
    let bob = sign_up(&app, &mut spec, "bob@example.com").await;
    let me = app.get("/v1/me", Some(&alice.access)).await;
    assert_eq!(spec.check(Method::GET, "/v1/me", me).await["id"], alice.id);
    let url = format!("ws://{}/v1/ws?token={}", app.addr, alice.access);
    let (socket, upgraded) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    spec.check_upgrade("/v1/ws", upgraded.status());
    drop(socket);
    api_keys(&app, &mut spec, &alice.access).await;
    let admin = app.admin_token().await;
    money(&app, &mut spec, &admin, &alice, &bob).await;
    let rain = markets(&app, &mut spec, &admin).await;
    trading(&app, &mut spec, &rain, &alice.access, &bob.access).await;
    settle(&app, &mut spec, &admin, &rain, &alice.access).await;
    errors(&app, &mut spec, &admin).await;
    // One session ended by its access token, the other by its refresh token alone.
    let logout = app
        .post("/v1/auth/logout", Some(&bob.access), json!({}))
        .await;
    spec.check(Method::POST, "/v1/auth/logout", logout).await;
    let body = json!({ "refreshToken": alice.refresh });
    let logout = app.post("/v1/auth/logout", None, body).await;
    spec.check(Method::POST, "/v1/auth/logout", logout).await;
    // An operator's reset token, used by its holder.
    let alice_id = alice.id.parse().expect("a user id");
    let issued = server::auth::password_reset::issue(app.db(), alice_id, 1)
        .await
        .expect("a reset token");
    let body = json!({ "token": issued.token, "newPassword": "alice's fresh passphrase" });
    let reset = app.post("/v1/auth/password-reset", None, body).await;
    let reset = spec
        .check(Method::POST, "/v1/auth/password-reset", reset)
        .await;
    assert_eq!(reset["id"], alice.id);

    let missed: Vec<_> = spec
        .operations()
        .into_iter()
        .filter(|operation| !spec.succeeded.contains(operation))
        .collect();
    assert!(
        missed.is_empty(),
        "no successful answer checked for {missed:?}"
    );
}

/// Registers, logs in and refreshes: the account, the tokens, the rotated tokens.
async fn sign_up(app: &TestApp, spec: &mut Spec, email: &str) -> Trader {
    let registered = app.register(email, PASSWORD).await;
    let registered = spec
        .check(Method::POST, "/v1/auth/register", registered)
        .await;
    let login = app.login(email, PASSWORD).await;
    let login = spec.check(Method::POST, "/v1/auth/login", login).await;
    let body = json!({ "refreshToken": token(&login, "refreshToken") });
    let refreshed = app.post("/v1/auth/refresh", None, body).await;
    let refreshed = spec
        .check(Method::POST, "/v1/auth/refresh", refreshed)
        .await;
    Trader {
        access: token(&refreshed, "accessToken"),
        refresh: token(&refreshed, "refreshToken"),
        id: registered["user"]["id"].as_str().unwrap().to_owned(),
    }
}

async fn api_keys(app: &TestApp, spec: &mut Spec, user: &str) {
    let body = json!({ "name": "bot" });
    let created = app.post("/v1/api-keys", Some(user), body).await;
    let created = spec.check(Method::POST, "/v1/api-keys", created).await;
    let listed = app.get("/v1/api-keys", Some(user)).await;
    let listed = spec.check(Method::GET, "/v1/api-keys", listed).await;
    assert_eq!(listed["data"][0]["id"], created["id"]);
    let path = format!("/v1/api-keys/{}", created["id"].as_str().unwrap());
    let revoked = app.send(Method::DELETE, &path, Some(user), None).await;
    spec.check(Method::DELETE, "/v1/api-keys/{id}", revoked)
        .await;
}

/// Deposits for both, a faucet credit and a withdrawal for alice, her balance and transfers.
async fn money(app: &TestApp, spec: &mut Spec, admin: &str, alice: &Trader, bob: &Trader) {
    for user in [&alice.id, &bob.id] {
        let deposited = app.deposit(admin, user, "1000").await;
        spec.check(Method::POST, "/v1/transfers/deposit", deposited)
            .await;
    }
    let body = json!({ "amount": "10.5" });
    let fauceted = app
        .post("/v1/transfers/faucet", Some(&alice.access), body)
        .await;
    spec.check(Method::POST, "/v1/transfers/faucet", fauceted)
        .await;
    let body = json!({ "amount": "0.123456" });
    let withdrawn = app
        .post("/v1/transfers/withdraw", Some(&alice.access), body)
        .await;
    let withdrawn = spec
        .check(Method::POST, "/v1/transfers/withdraw", withdrawn)
        .await;
    assert_eq!(withdrawn["amount"], "0.123456");
    let balance = app.get("/v1/portfolio/balance", Some(&alice.access)).await;
    let balance = spec
        .check(Method::GET, "/v1/portfolio/balance", balance)
        .await;
    assert_eq!(balance["total"], "1010.376544");
    let transfers = app
        .get("/v1/portfolio/transfers?limit=2", Some(&alice.access))
        .await;
    let transfers = spec
        .check(Method::GET, "/v1/portfolio/transfers", transfers)
        .await;
    assert!(transfers["nextCursor"].is_string(), "{transfers}");
}

/// Two markets: `rain` stays for trading; `snow` is halted, resumed and closed. Returns rain's id.
async fn markets(app: &TestApp, spec: &mut Spec, admin: &str) -> String {
    let body = json!({
        "slug": "rain", "question": "Rain tomorrow?", "tickSize": "0.01",
        "makerFeeRate": "-0.0025", "takerFeeRate": "0.07",
        "closesAt": "2100-01-01T00:00:00Z",
    });
    let rain = app.post("/v1/markets", Some(admin), body).await;
    let rain = spec.check(Method::POST, "/v1/markets", rain).await;
    let snow = app.create_market(admin, "snow", "Snow tomorrow?").await;
    let snow = snow["id"].as_str().unwrap().to_owned();
    for (action, state) in [("halt", "HALTED"), ("resume", "OPEN"), ("close", "CLOSED")] {
        let path = format!("/v1/markets/{snow}/{action}");
        let changed = app.post(&path, Some(admin), json!({})).await;
        let template = format!("/v1/markets/{{id}}/{action}");
        assert_eq!(
            spec.check(Method::POST, &template, changed).await["state"],
            state
        );
    }
    let listed = app.get("/v1/markets?state=open&q=RAIN", None).await;
    let listed = spec.check(Method::GET, "/v1/markets", listed).await;
    assert_eq!(listed["data"][0]["id"], rain["id"]);
    let shown = app.get("/v1/markets/rain", None).await;
    spec.check(Method::GET, "/v1/markets/{id}", shown).await;
    rain["id"].as_str().unwrap().to_owned()
}

/// Orders with fills from both sides, amends, cancels, a batch with a failing item, the
/// market's data, the traders' fills and positions, split and merge.
async fn trading(app: &TestApp, spec: &mut Spec, market: &str, alice: &str, bob: &str) {
    let limit = |side: &str, outcome: &str, price: &str, qty: u64| {
        json!({ "marketId": market, "side": side, "outcome": outcome, "type": "LIMIT",
                "price": price, "qty": qty, "clientOrderId": format!("{side}-{outcome}-{price}") })
    };
    let resting = app
        .post("/v1/orders", Some(alice), limit("BUY", "YES", "0.40", 10))
        .await;
    let resting = spec.check(Method::POST, "/v1/orders", resting).await;
    let resting_id = resting["order"]["id"].as_str().unwrap().to_owned();
    // BUY NO at 0.60 is a YES ask at 0.40: it mints 4 pairs against alice's bid.
    let taking = app
        .post("/v1/orders", Some(bob), limit("BUY", "NO", "0.60", 4))
        .await;
    let taking = spec.check(Method::POST, "/v1/orders", taking).await;
    assert_eq!(taking["fills"][0]["kind"], "MINT", "{taking}");
    let replayed = app
        .post("/v1/orders", Some(bob), limit("BUY", "NO", "0.60", 4))
        .await;
    assert_eq!(replayed.status(), StatusCode::OK);
    spec.check(Method::POST, "/v1/orders", replayed).await;
    let market_order = json!({ "marketId": market, "side": "BUY", "outcome": "NO",
                               "type": "MARKET", "cashAmount": "1.40" });
    let sold = app.post("/v1/orders", Some(bob), market_order).await;
    spec.check(Method::POST, "/v1/orders", sold).await;

    let path = format!("/v1/orders/{resting_id}");
    let shown = app.get(&path, Some(alice)).await;
    let shown = spec.check(Method::GET, "/v1/orders/{id}", shown).await;
    assert!(shown["queuePosition"].is_u64(), "{shown}");
    let amended = app
        .send(
            Method::PATCH,
            &path,
            Some(alice),
            Some(json!({ "qty": 8, "price": "0.41" })),
        )
        .await;
    spec.check(Method::PATCH, "/v1/orders/{id}", amended).await;
    let listed = app.get("/v1/orders?status=open&limit=1", Some(alice)).await;
    spec.check(Method::GET, "/v1/orders", listed).await;

    for path in ["book?depth=5", "trades", "ticker", "candles?interval=1m"] {
        let answer = app.get(&format!("/v1/markets/{market}/{path}"), None).await;
        let template = format!("/v1/markets/{{id}}/{}", path.split('?').next().unwrap());
        spec.check(Method::GET, &template, answer).await;
    }
    for who in [alice, bob] {
        let fills = app.get("/v1/portfolio/fills", Some(who)).await;
        spec.check(Method::GET, "/v1/portfolio/fills", fills).await;
        let positions = app.get("/v1/portfolio/positions", Some(who)).await;
        spec.check(Method::GET, "/v1/portfolio/positions", positions)
            .await;
    }
    for (action, qty) in [("split", 3), ("merge", 1)] {
        let path = format!("/v1/markets/{market}/{action}");
        let converted = app.post(&path, Some(alice), json!({ "qty": qty })).await;
        let template = format!("/v1/markets/{{id}}/{action}");
        spec.check(Method::POST, &template, converted).await;
    }

    let batch = json!({
        "place": [limit("SELL", "YES", "0.70", 2), limit("SELL", "YES", "0.705", 2)],
        "cancel": [NOBODY],
    });
    let batched = app.post("/v1/orders/batch", Some(alice), batch).await;
    let batched = spec.check(Method::POST, "/v1/orders/batch", batched).await;
    assert!(batched["place"][0]["order"].is_object(), "{batched}");
    assert_eq!(batched["place"][1]["error"]["code"], "PRICE_OFF_TICK");
    assert_eq!(batched["cancel"][0]["error"]["code"], "NOT_FOUND");
    let cancelled = app.send(Method::DELETE, &path, Some(alice), None).await;
    let cancelled = spec
        .check(Method::DELETE, "/v1/orders/{id}", cancelled)
        .await;
    assert_eq!(cancelled["cancelReason"], "USER_REQUESTED");
    let all = app
        .post(
            "/v1/orders/cancel-all",
            Some(alice),
            json!({ "marketId": market }),
        )
        .await;
    let all = spec.check(Method::POST, "/v1/orders/cancel-all", all).await;
    assert_eq!(all["cancelled"].as_array().map(Vec::len), Some(1), "{all}");
}

/// Resolves the market SPLIT and reads alice's settlement.
async fn settle(app: &TestApp, spec: &mut Spec, admin: &str, market: &str, alice: &str) {
    let path = format!("/v1/markets/{market}/resolve");
    let body = json!({ "outcome": "SPLIT", "yesPayout": "0.4" });
    let resolved = app.post(&path, Some(admin), body).await;
    let resolved = spec
        .check(Method::POST, "/v1/markets/{id}/resolve", resolved)
        .await;
    assert_eq!(resolved["resolution"]["yesPayout"], "0.40");
    let settled = app.get("/v1/portfolio/settlements", Some(alice)).await;
    let settled = spec
        .check(Method::GET, "/v1/portfolio/settlements", settled)
        .await;
    assert_eq!(
        settled["data"].as_array().map(Vec::len),
        Some(1),
        "{settled}"
    );
    let refused = app.post("/v1/admin/snapshot", Some(alice), json!({})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let snapshot = app.post("/v1/admin/snapshot", Some(admin), json!({})).await;
    let snapshot = spec
        .check(Method::POST, "/v1/admin/snapshot", snapshot)
        .await;
    assert!(snapshot["seq"].as_u64() > Some(0), "{snapshot}");
    assert_eq!(snapshot["stateHash"].as_str().map(str::len), Some(32));
}

/// Error answers match the error shape too, `details` included.
async fn errors(app: &TestApp, spec: &mut Spec, admin: &str) {
    let body = json!({ "userId": NOBODY, "amount": "1.2.3" });
    let invalid = app.post("/v1/transfers/deposit", Some(admin), body).await;
    let invalid = spec
        .check(Method::POST, "/v1/transfers/deposit", invalid)
        .await;
    assert_eq!(invalid["error"]["details"]["field"], "amount");
    let missing = app.get(&format!("/v1/markets/{NOBODY}/book"), None).await;
    spec.check(Method::GET, "/v1/markets/{id}/book", missing)
        .await;
    let malformed = app.get("/v1/markets?limit=many", None).await;
    spec.check(Method::GET, "/v1/markets", malformed).await;
    // An optional body may be left out, but it is never `null`.
    let null = app
        .post("/v1/orders/cancel-all", Some(admin), Value::Null)
        .await;
    let null = spec
        .check(Method::POST, "/v1/orders/cancel-all", null)
        .await;
    assert_eq!(null["error"]["code"], "BAD_REQUEST");
}

//! Cross-origin access: only the configured browser origins get CORS answers (with
//! credentials, so the app's cookie session works); any other origin gets none, so the browser
//! refuses to hand it the response.

use reqwest::{Method, StatusCode};

use crate::helpers::{spawn_app_with, Backend};

crate::on_both_databases!(only_configured_origins_may_call_from_a_browser);

const APP: &str = "https://app.example.com";

async fn only_configured_origins_may_call_from_a_browser(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.cors_allowed_origins = vec![APP.into()];
    })
    .await
    else {
        return;
    };
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/v1/orders"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-csrf-token",
            )
            .send()
    };
    let allowed = preflight(APP).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], APP);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("x-csrf-token"),
        "{allowed_headers}"
    );

    let stranger = preflight("https://evil.example").await.unwrap();
    assert!(stranger
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // A simple cross-origin read carries the header for the app and not for anyone else.
    let read = |origin: &'static str| {
        app.client
            .get(app.url("/v1/markets"))
            .header("origin", origin)
            .send()
    };
    let from_app = read(APP).await.unwrap();
    assert_eq!(from_app.status(), StatusCode::OK);
    assert_eq!(from_app.headers()["access-control-allow-origin"], APP);
    let from_stranger = read("https://evil.example").await.unwrap();
    assert!(from_stranger
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

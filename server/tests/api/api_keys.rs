//! API keys: shown once, stored hashed, accepted as `X-API-Key`, revocable.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, token, Backend};

crate::on_both_databases!(
    an_api_key_is_shown_once_authenticates_and_dies_when_revoked,
    api_keys_belong_to_their_owner_and_cannot_mint_more,
);

async fn an_api_key_is_shown_once_authenticates_and_dies_when_revoked(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (id, login) = app.signed_up("bot-owner@example.com").await;
    let access = token(&login, "accessToken");
    let created = app
        .post(
            "/v1/api-keys",
            Some(&access),
            json!({ "name": " market maker " }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pdx_") && key.len() > 40, "{key}");
    assert_eq!(created["name"], "market maker");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    let listed: Value = app
        .get("/v1/api-keys", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], created["id"]);
    assert!(listed["data"][0].get("key").is_none());
    assert_eq!(listed["nextCursor"], Value::Null);
    // Only the hash is stored.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE key_hash = $1")
        .bind(&key)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    let me = app
        .client
        .get(app.url("/v1/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
    let wrong = app
        .client
        .get(app.url("/v1/me"))
        .header("x-api-key", "pdx_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(wrong, StatusCode::UNAUTHORIZED).await,
        "UNAUTHENTICATED"
    );

    let path = format!("/v1/api-keys/{}", created["id"].as_str().unwrap());
    let revoked = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = app
        .client
        .get(app.url("/v1/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let twice = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(twice, StatusCode::NOT_FOUND).await, "NOT_FOUND");
    let listed: Value = app
        .get("/v1/api-keys", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["data"].as_array().unwrap().is_empty());
}

async fn api_keys_belong_to_their_owner_and_cannot_mint_more(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, owner) = app.signed_up("owner@example.com").await;
    let (_, other) = app.signed_up("other@example.com").await;
    let owner = token(&owner, "accessToken");
    let other = token(&other, "accessToken");
    let created: Value = app
        .post("/v1/api-keys", Some(&owner), json!({ "name": "k" }))
        .await
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let path = format!("/v1/api-keys/{}", created["id"].as_str().unwrap());
    let foreign = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(foreign, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    let not_uuid = app
        .client
        .delete(app.url("/v1/api-keys/42"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(not_uuid.status(), StatusCode::NOT_FOUND);
    let minted = app
        .client
        .post(app.url("/v1/api-keys"))
        .header("x-api-key", key)
        .json(&json!({ "name": "escalation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(minted, StatusCode::FORBIDDEN).await, "FORBIDDEN");
    let nameless = app
        .post("/v1/api-keys", Some(&owner), json!({ "name": "" }))
        .await;
    assert_eq!(
        error_code(nameless, StatusCode::UNPROCESSABLE_ENTITY).await,
        "VALIDATION_FAILED"
    );
    // 40 at once for the 19 places left: the limit holds under concurrency (a read-then-write
    // count would let several through).
    let racing = (0..40).map(|n| {
        app.post(
            "/v1/api-keys",
            Some(&owner),
            json!({ "name": format!("k{n}") }),
        )
    });
    let mut statuses: Vec<u16> = futures_util::future::join_all(racing)
        .await
        .iter()
        .map(|answer| answer.status().as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses[..19], [201; 19]);
    assert_eq!(statuses[19..], [409; 21]);
    let listed: Value = app
        .get("/v1/api-keys", Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 20);
    let over = app
        .post(
            "/v1/api-keys",
            Some(&owner),
            json!({ "name": "one too many" }),
        )
        .await;
    assert_eq!(error_code(over, StatusCode::CONFLICT).await, "CONFLICT");
}

//! `--demo`: seeding creates the markets and accounts once (a second seed, even after a
//! restart, reuses them), and every step leaves each book with the maker's fresh three-level
//! ladder on both sides.

use reqwest::StatusCode;
use serde_json::Value;
use server::demo::{seed, DEMO_EMAIL, DEMO_PASSWORD};

use crate::helpers::{spawn_app, token, Backend, TestApp};

crate::on_both_databases!(the_demo_seeds_once_and_keeps_the_books_quoted);

async fn demo_user_balance(app: &TestApp) -> Value {
    let login = app.login(DEMO_EMAIL, DEMO_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    app.balance(&token(&login, "accessToken")).await
}

async fn the_demo_seeds_once_and_keeps_the_books_quoted(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let mut demo = seed(app.server().state()).await.unwrap();
    for _ in 0..3 {
        demo.step(app.server().state()).await.unwrap();
    }
    let listed: Value = app.get("/v1/markets", None).await.json().await.unwrap();
    let slugs: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs.len(), 3, "{slugs:?}");
    for slug in slugs {
        let book: Value = app
            .get(&format!("/v1/markets/{slug}/book"), None)
            .await
            .json()
            .await
            .unwrap();
        // The taker may have taken some of the inner levels; the ladder is never crossed.
        let bids = book["bids"].as_array().unwrap();
        let asks = book["asks"].as_array().unwrap();
        assert!(!bids.is_empty() && bids.len() <= 3, "{book}");
        assert!(!asks.is_empty() && asks.len() <= 3, "{book}");
        assert!(bids[0]["price"].as_str().unwrap() < asks[0]["price"].as_str().unwrap());
    }
    assert_eq!(demo_user_balance(&app).await["total"], "1000.00");

    // A restart recovers everything, and seeding again credits nobody twice.
    app.restart().await;
    let mut again = seed(app.server().state()).await.unwrap();
    again.step(app.server().state()).await.unwrap();
    let listed: Value = app.get("/v1/markets", None).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    assert_eq!(demo_user_balance(&app).await["total"], "1000.00");
}

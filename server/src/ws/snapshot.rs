//! A topic's committed state with the seq it is valid at, read from the database alone (so
//! a read-only gateway answers exactly like the primary).
//!
//! Book and trades snapshots are stitched to deltas and events, so their data and seq come
//! from ONE statement (one consistent view on either database). The other topics stream whole
//! states (an order, a balance, a position per market): reading the seq first and the data
//! after can only make the data newer than the seq, and the messages that follow carry the
//! same or newer states, so a client applying them still ends exactly right. Must never write.

use serde_json::{json, Value};
use sqlx::Row;

use crate::db::Db;
use crate::http::{AppState, Error};
use crate::markets::{self, data};
use crate::orders::store::open_orders_of_user;
use crate::stream::Topic;
use crate::{portfolio, transfers, users};

/// Trades in a `trades:` snapshot.
pub const TRADES_IN_SNAPSHOT: i64 = 50;

pub struct Snapshot {
    pub seq: u64,
    /// `None` for `fills`, which has no snapshot (its history is `/v1/portfolio/fills`).
    pub data: Option<Value>,
}

pub async fn read(state: &AppState, topic: Topic) -> Result<Snapshot, Error> {
    // However many sockets subscribe at once, only a few snapshots read the database at once.
    let _place = data::read_place().await?;
    let db = &state.db;
    match topic {
        Topic::Book(market_id) => {
            let market = markets::existing(db, &market_id.to_string()).await?;
            let book = data::committed_depth(db, market.engine_id, market.id, usize::MAX).await?;
            let body = data::book_body(market.id, &book);
            Ok(Snapshot {
                seq: book.book_seq,
                data: Some(serde_json::to_value(body).map_err(Error::internal)?),
            })
        }
        Topic::Trades(market_id) => trades(db, topic, market_id).await,
        Topic::Ticker(market_id) => {
            let seq = seq_of(db, topic).await?;
            let market = markets::existing(db, &market_id.to_string()).await?;
            let book = data::committed_depth(db, market.engine_id, market.id, 1).await?;
            let ticker = data::ticker_of(db, &market, &book).await?;
            whole(seq, ticker)
        }
        Topic::Orders(user_id) => {
            let seq = seq_of(db, topic).await?;
            let orders = match users::engine_user(db, user_id).await? {
                Some(user) => open_orders_of_user(db, user).await?,
                None => Vec::new(),
            };
            let bodies: Vec<_> = orders.into_iter().map(|order| order.body).collect();
            whole(seq, json!({ "orders": bodies }))
        }
        Topic::Fills(_) => Ok(Snapshot {
            seq: seq_of(db, topic).await?,
            data: None,
        }),
        Topic::Balances(user_id) => {
            let seq = seq_of(db, topic).await?;
            whole(seq, transfers::balance_of(db, user_id).await?)
        }
        Topic::Positions(user_id) => {
            let seq = seq_of(db, topic).await?;
            let positions = match users::engine_user(db, user_id).await? {
                Some(user) => portfolio::positions_of(state, user, None).await?,
                None => Vec::new(),
            };
            whole(seq, json!({ "positions": positions }))
        }
    }
}

fn whole(seq: u64, data: impl serde::Serialize) -> Result<Snapshot, Error> {
    Ok(Snapshot {
        seq,
        data: Some(serde_json::to_value(data).map_err(Error::internal)?),
    })
}

/// The last seq published on `topic` (0 before the first).
pub async fn seq_of(db: &Db, topic: Topic) -> Result<u64, Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM stream_seqs WHERE topic = $1")
        .bind(topic.to_string())
        .fetch_optional(&db.pool)
        .await?;
    u64::try_from(seq.unwrap_or(0)).map_err(Error::internal)
}

/// The last trades, newest first, with the seq they are complete up to.
async fn trades(db: &Db, topic: Topic, market_id: uuid::Uuid) -> Result<Snapshot, Error> {
    let market = markets::existing(db, &market_id.to_string()).await?;
    let columns = data::TRADE_COLUMNS
        .split(", ")
        .map(|column| format!("t.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(&format!(
        "SELECT s.stream_seq, {columns} FROM \
         (SELECT CAST(COALESCE((SELECT seq FROM stream_seqs WHERE topic = $1), 0) AS BIGINT) \
         AS stream_seq) s LEFT JOIN \
         (SELECT {} FROM trades WHERE engine_market_id = $2 \
         ORDER BY engine_trade_id DESC LIMIT $3) t ON 1 = 1 \
         ORDER BY t.engine_trade_id DESC",
        data::TRADE_COLUMNS
    ))
    .bind(topic.to_string())
    .bind(i64::from(market.engine_id.0))
    .bind(TRADES_IN_SNAPSHOT)
    .fetch_all(&db.pool)
    .await?;
    let mut seq = 0;
    let mut trades = Vec::with_capacity(rows.len());
    for row in &rows {
        seq = row.try_get::<i64, _>("stream_seq")?;
        if row.try_get::<Option<i64>, _>("engine_trade_id")?.is_some() {
            trades.push(data::trade_from_row(row)?.1);
        }
    }
    Ok(Snapshot {
        seq: u64::try_from(seq).map_err(Error::internal)?,
        data: Some(json!({ "trades": trades })),
    })
}

//! `server --demo`: a living exchange on a fresh start. Seeds three markets, a market maker, a
//! taker and a login for whoever opens the app (`DEMO_EMAIL` / `DEMO_PASSWORD`, printed at start),
//! then keeps the books moving: every tick the maker re-quotes a three-level ladder on each side
//! around a drifting fair value, and now and then the taker sends a market order.
//!
//! Owns nothing but its loop: every change goes through the sequencer like any client's, so it is
//! journaled, projected and streamed the same way. Seeding is idempotent (a restart reuses the
//! users and markets). Must never run unless asked for.

use std::time::Duration;

use engine::{MarketId, MarketParams, Op, Outcome, PlaceOrder, Side, Slug, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::auth::create_user;
use crate::domain::{Email, FullName, Password};
use crate::http::{AppState, Error};
use crate::markets;
use crate::sequencer::Subject;
use crate::users::{self, Role};

pub const DEMO_EMAIL: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "demo password 1234";
const MAKER_EMAIL: &str = "maker@demo.example.com";
const TAKER_EMAIL: &str = "taker@demo.example.com";
const BOT_PASSWORD: &str = "a bot password nobody types";
const TICK: Duration = Duration::from_millis(500);
const LEVELS: u16 = 3;

/// Slug, question and starting fair value (YES price units) of each demo market.
const MARKETS: [(&str, &str, u16); 3] = [
    (
        "btc-100k-by-year-end",
        "Will BTC trade above $100k on December 31?",
        4_200,
    ),
    (
        "rain-in-london-tomorrow",
        "Will it rain in London tomorrow?",
        6_500,
    ),
    ("team-a-wins-the-final", "Will Team A win the final?", 5_000),
];

/// What the loop works with: the bots' engine ids and each market with its fair value.
pub struct Demo {
    maker: UserId,
    taker: UserId,
    markets: Vec<(MarketId, u16)>,
    rng: StdRng,
}

/// Creates whatever of the demo is missing and funds new accounts.
pub async fn seed(state: &AppState) -> Result<Demo, Error> {
    let (_, maker) = account(
        state,
        MAKER_EMAIL,
        BOT_PASSWORD,
        "Demo market maker",
        1_000_000,
    )
    .await?;
    let (_, taker) = account(state, TAKER_EMAIL, BOT_PASSWORD, "Demo taker", 100_000).await?;
    account(state, DEMO_EMAIL, DEMO_PASSWORD, "Demo user", 1_000).await?;
    let mut demo_markets = Vec::new();
    for (slug, question, fair) in MARKETS {
        demo_markets.push((market(state, slug, question).await?, fair));
    }
    Ok(Demo {
        maker,
        taker,
        markets: demo_markets,
        rng: StdRng::from_entropy(),
    })
}

/// A user by email, created (and credited `dollars`) when missing; its engine account either way.
pub async fn account(
    state: &AppState,
    email: &str,
    password: &str,
    name: &str,
    dollars: i64,
) -> Result<(Uuid, UserId), Error> {
    let email = Email::parse(email)?;
    if let Some(user) = users::by_email(&state.db, &email).await? {
        return Ok((user.id, state.sequencer.ensure_user(user.id).await?));
    }
    let password = Password::parse(password.to_owned(), &email)?;
    let user = create_user(
        state,
        &email,
        &FullName::parse(name)?,
        &password,
        Role::User,
    )
    .await?;
    let engine_user = state.sequencer.ensure_user(user.id).await?;
    let deposit = Op::Deposit {
        user: engine_user,
        amount_micros: dollars * engine::units::MICROS_PER_SHARE,
    };
    state
        .sequencer
        .submit(deposit, None)
        .await?
        .result
        .map_err(Error::Rejected)?;
    Ok((user.id, engine_user))
}

pub async fn market(state: &AppState, slug: &str, question: &str) -> Result<MarketId, Error> {
    if let Some(market) = markets::find(&state.db, slug).await? {
        return Ok(market.engine_id);
    }
    let params = MarketParams {
        slug: Slug::new(slug).expect("demo slugs are valid"),
        tick_units: 100,
        qty_min: 1,
        qty_max: 10_000,
        maker_fee_bps: 0,
        taker_fee_bps: 100,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    };
    let subject = Subject::Market {
        market_id: Uuid::new_v4(),
        question: question.to_owned(),
        description: "A demo market, traded by the demo's bots.".to_owned(),
    };
    let applied = state
        .sequencer
        .submit(Op::CreateMarket(params), Some(subject))
        .await?;
    applied.result.map_err(Error::Rejected)?;
    Ok(markets::existing(&state.db, slug).await?.engine_id)
}

impl Demo {
    /// One round: each market's fair value drifts, the maker re-quotes, the taker may trade.
    /// Rejects (a halted market, an empty book) are part of a market's life: skipped.
    pub async fn step(&mut self, state: &AppState) -> Result<(), Error> {
        for index in 0..self.markets.len() {
            let (market, fair) = self.markets[index];
            let drift: i32 = self.rng.gen_range(-100..=100);
            let fair = (i32::from(fair) + drift).clamp(1_000, 9_000) as u16 / 100 * 100;
            self.markets[index].1 = fair;
            self.quote(state, market, fair).await?;
            if self.rng.gen_bool(0.3) {
                let outcome = if self.rng.gen_bool(0.5) {
                    Outcome::Yes
                } else {
                    Outcome::No
                };
                let qty = self.rng.gen_range(1..=40);
                let order = PlaceOrder::market(self.taker, market, Side::Buy, outcome, qty);
                let _ = state.sequencer.submit(Op::Place(order), None).await?;
            }
        }
        Ok(())
    }

    /// Cancels the maker's quotes in `market` and places a fresh ladder: BUY YES below the fair
    /// value, BUY NO above it (resting on the YES ask).
    async fn quote(&mut self, state: &AppState, market: MarketId, fair: u16) -> Result<(), Error> {
        let cancel = Op::CancelAll {
            user: self.maker,
            market: Some(market),
        };
        let _ = state.sequencer.submit(cancel, None).await?;
        let mut places = Vec::new();
        for level in 1..=LEVELS {
            let bid = fair - 100 * level;
            let ask = fair + 100 * level;
            let size = self.rng.gen_range(10..=120);
            places.push(PlaceOrder::limit(
                self.maker,
                market,
                Side::Buy,
                Outcome::Yes,
                bid,
                size,
            ));
            let no_price = engine::units::complement_units(ask);
            places.push(PlaceOrder::limit(
                self.maker,
                market,
                Side::Buy,
                Outcome::No,
                no_price,
                size,
            ));
        }
        let batch = Op::Batch {
            user: self.maker,
            cancels: Vec::new(),
            places,
        };
        let _ = state.sequencer.submit(batch, None).await?;
        Ok(())
    }
}

/// Runs the demo until `stop` changes; errors (the exchange stopping) end it quietly.
pub fn spawn(state: AppState, mut demo: Demo, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(error) = demo.step(&state).await {
                        tracing::warn!(%error, "demo stopped");
                        return;
                    }
                }
                _ = stop.changed() => return,
            }
        }
    })
}

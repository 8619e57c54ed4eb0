//! Cursor pagination shared by every list: `?limit=` (default 50, max 500) and `?cursor=`.
//!
//! Lists run newest first over an integer key (an engine id or sequence number); the cursor is
//! that key of the last item served, and the next page is everything below it. Owns parsing
//! and cutting pages only; it never builds SQL beyond the bound values it hands back.

use serde::{Deserialize, Serialize};

use super::Error;

pub const LIMIT_DEFAULT: i64 = 50;
pub const LIMIT_MAX: i64 = 500;

/// The query of a list with nothing to filter: `?limit=&cursor=`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: i64,
    /// Only keys strictly below this one (`i64::MAX` on the first page).
    pub before: i64,
}

impl Page {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Page, Error> {
        let limit = limit.unwrap_or(LIMIT_DEFAULT);
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(Error::validation("limit", "must be from 1 to 500"));
        }
        let before = match cursor {
            None | Some("") => i64::MAX,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|key| *key > 0)
                .ok_or_else(|| Error::validation("cursor", "is not a cursor this API gave out"))?,
        };
        Ok(Page { limit, before })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Cuts `rows` (fetched with `page.fetch()`, each with its key) into the answer.
pub fn paged<T>(page: Page, mut rows: Vec<(i64, T)>) -> Paged<T> {
    let more = rows.len() as i64 > page.limit;
    rows.truncate(usize::try_from(page.limit).unwrap_or(0));
    let next_cursor = if more {
        rows.last().map(|(key, _)| key.to_string())
    } else {
        None
    };
    Paged {
        data: rows.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    }
}

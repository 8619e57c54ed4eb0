//! Cursor pagination shared by every list: `?limit=` (default 50, max 500) and `?cursor=`.
//!
//! Lists run newest first over an integer key (an engine id or sequence number); the cursor is
//! that key of the last item served, and the next page is everything below it. Owns parsing
//! and cutting pages only; it never builds SQL beyond the bound values it hands back.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, ToSchema};

use super::Error;

pub const LIMIT_DEFAULT: i64 = 50;
pub const LIMIT_MAX: i64 = 500;

/// The query of a list with nothing to filter: `?limit=&cursor=`, nothing else.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, from 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page; absent for the first.
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

/// One page of a list, newest first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The schema of a `Paged<T>`, whose `data` refers to `T`'s own schema.
pub fn schema_of_page<T: ToSchema>() -> RefOr<Schema> {
    let items = ArrayBuilder::new().items(Ref::from_schema_name(T::name()));
    let next_cursor = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("The `cursor` of the next page, or null on the last."));
    ObjectBuilder::new()
        .description(Some(format!("One page of `{}`, newest first.", T::name())))
        .property("data", items)
        .required("data")
        .property("nextCursor", next_cursor)
        .required("nextCursor")
        .into()
}

/// Declares `$page` as the document's name for `Paged<$item>`. Utoipa's derive would copy the
/// item's whole schema into every page type; a named page refers to it instead, so each item
/// type is defined once and client generators make one model of it.
macro_rules! page_schema {
    ($page:ident of $item:ty) => {
        #[doc = concat!("The document's name for `Paged<", stringify!($item), ">`.")]
        pub struct $page;

        impl utoipa::PartialSchema for $page {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::http::page::schema_of_page::<$item>()
            }
        }

        impl utoipa::ToSchema for $page {
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                let name = <$item as utoipa::ToSchema>::name().into_owned();
                schemas.push((name, <$item as utoipa::PartialSchema>::schema()));
                <$item as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}
pub(crate) use page_schema;

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

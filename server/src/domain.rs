//! Domain types parsed at the HTTP boundary: an `Email`, a `FullName`, a `Password` that meets
//! the policy, an API key's `KeyName`, exact cash amounts, prices, fee rates and times.
//!
//! Parse, don't validate: a handler turns raw strings into these once, and nothing past it sees
//! a raw string. Every parser returns a 422 naming the field; none may panic on any input. Cash
//! is exact: a decimal string becomes integer micro-dollars or is refused, never rounded.

use std::str::FromStr;

use engine::units::{MICROS_PER_SHARE, PRICE_SCALE, TRANSFER_MICROS_MAX};
use engine::{LockRule, Reject};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::http::Error;

pub const EMAIL_LEN_MAX: usize = 254;
pub const EMAIL_LOCAL_LEN_MAX: usize = 64;
pub const FULL_NAME_CHARS_MAX: usize = 100;
/// NIST SP 800-63B / OWASP: length is what matters; no composition rules.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Long enough for any passphrase, short enough that hashing stays cheap (argon2 reads it all).
pub const PASSWORD_CHARS_MAX: usize = 128;
pub const KEY_NAME_CHARS_MAX: usize = 64;
/// Decimal places a cash amount may carry (micro-dollars).
pub const CASH_DECIMALS_MAX: u32 = 6;

/// A normalized email address: trimmed and lower-cased, so `Alice@Example.com` and
/// `alice@example.com` are one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Error> {
        let email = raw.trim().to_lowercase();
        let invalid = |why: &str| Error::validation("email", why.to_owned());
        if email.is_empty() || email.len() > EMAIL_LEN_MAX {
            return Err(invalid("must be 1 to 254 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must look like name@example.com"));
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.len() > EMAIL_LOCAL_LEN_MAX || !domain_ok {
            return Err(invalid("must look like name@example.com"));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub fn parse(raw: &str) -> Result<FullName, Error> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > FULL_NAME_CHARS_MAX {
            return Err(Error::validation("fullName", "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::validation(
                "fullName",
                "must not contain control characters",
            ));
        }
        Ok(FullName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy. Never printed.
pub struct Password(String);

impl Password {
    pub fn parse(raw: String, email: &Email) -> Result<Password, Error> {
        let chars = raw.chars().count();
        if chars < PASSWORD_CHARS_MIN {
            return Err(Error::validation(
                "password",
                format!("must be at least {PASSWORD_CHARS_MIN} characters"),
            ));
        }
        if chars > PASSWORD_CHARS_MAX {
            return Err(Error::validation(
                "password",
                format!("must be at most {PASSWORD_CHARS_MAX} characters"),
            ));
        }
        if raw.trim().is_empty() || raw.to_lowercase() == email.as_str() {
            return Err(Error::validation(
                "password",
                "must not be blank or your email address",
            ));
        }
        Ok(Password(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<KeyName, Error> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > KEY_NAME_CHARS_MAX || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "must be 1 to 64 characters without control characters",
            ));
        }
        Ok(KeyName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A positive cash amount for a transfer: a decimal string with at most 6 decimals, at most the
/// engine's single-transfer bound, exactly converted to micro-dollars.
pub fn parse_transfer_amount(raw: &str, field: &'static str) -> Result<i64, Error> {
    let digits_ok = {
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && (!raw.contains('.') || !fraction.is_empty())
            && fraction.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits_ok {
        return Err(Error::validation(
            field,
            "must be a decimal string like \"100.00\"",
        ));
    }
    let amount = Decimal::from_str(raw)
        .map_err(|_| Error::validation(field, "is not a number we can represent"))?;
    if amount.scale() > CASH_DECIMALS_MAX && amount.normalize().scale() > CASH_DECIMALS_MAX {
        return Err(Error::validation(field, "has more than 6 decimals"));
    }
    // Checked: `*` panics when a huge amount overflows the decimal type.
    let micros = amount
        .checked_mul(Decimal::from(MICROS_PER_SHARE))
        .and_then(|micros| micros.to_i64())
        .filter(|micros| (1..=TRANSFER_MICROS_MAX).contains(micros))
        .ok_or_else(|| Error::validation(field, "must be more than 0 and at most 1000000000"))?;
    Ok(micros)
}

/// The digits of an unsigned decimal string (`"12"`, `"0.25"`), or `None` for anything else
/// (signs, exponents, spaces, a bare dot).
fn decimal_parts(raw: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return None,
        None => (raw, ""),
    };
    let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    (!whole.is_empty() && digits(whole) && digits(fraction)).then_some((whole, fraction))
}

/// An unsigned decimal with at most `decimals` significant decimals, as an integer scaled by
/// `10^decimals`; `None` when it is not a plain decimal, has more decimals, or exceeds `max`.
fn scaled(raw: &str, decimals: u32, max: u64) -> Option<Result<u64, ()>> {
    let (whole, fraction) = decimal_parts(raw)?;
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > decimals as usize {
        return Some(Err(()));
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 12 {
        return Some(Ok(u64::MAX));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut padded = fraction.to_owned();
    while padded.len() < decimals as usize {
        padded.push('0');
    }
    let fraction: u64 = if padded.is_empty() {
        0
    } else {
        padded.parse().ok()?
    };
    let value = whole
        .checked_mul(10u64.pow(decimals))
        .and_then(|v| v.checked_add(fraction))
        .unwrap_or(u64::MAX);
    Some(Ok(value.min(max.saturating_add(1))))
}

/// A price in price units (0.0001): a decimal string strictly between 0 and 1. More than four
/// decimals is `PRICE_OFF_TICK` (never rounded); 0, 1 or more is `PRICE_OUT_OF_RANGE`. Whether
/// it sits on the market's tick is the engine's check.
pub fn parse_price_units(raw: &str, field: &'static str) -> Result<u16, Error> {
    match scaled(raw, 4, u64::from(PRICE_SCALE)) {
        None => Err(Error::validation(
            field,
            "must be a decimal string like \"0.45\"",
        )),
        Some(Err(())) => Err(Error::Rejected(Reject::PriceOffTick)),
        Some(Ok(units)) if (1..u64::from(PRICE_SCALE)).contains(&units) => {
            u16::try_from(units).map_err(|_| Error::Rejected(Reject::PriceOutOfRange))
        }
        Some(Ok(_)) => Err(Error::Rejected(Reject::PriceOutOfRange)),
    }
}

/// A payout per YES share in price units: a decimal string from 0 to 1 inclusive.
pub fn parse_payout_units(raw: &str, field: &'static str) -> Result<u16, Error> {
    match scaled(raw, 4, u64::from(PRICE_SCALE)) {
        Some(Ok(units)) if units <= u64::from(PRICE_SCALE) => {
            u16::try_from(units).map_err(|_| Error::validation(field, "must be from 0 to 1"))
        }
        _ => Err(Error::validation(
            field,
            "must be a decimal from \"0\" to \"1\" with at most 4 decimals",
        )),
    }
}

/// A fee rate (`"0.07"` = 7% of `qty * p * (1 - p)`) in basis points; at most 4 decimals, and
/// a leading `-` only where `signed` (a maker rebate).
pub fn parse_rate_bps(raw: &str, field: &'static str, signed: bool) -> Result<i32, Error> {
    let (negative, magnitude) = match raw.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, raw),
    };
    match scaled(magnitude, 4, 10_000) {
        Some(Ok(bps)) if bps <= 10_000 => {
            let bps = i32::try_from(bps).map_err(|_| Error::validation(field, "too large"))?;
            Ok(if negative { -bps } else { bps })
        }
        _ => Err(Error::validation(
            field,
            "must be a decimal rate from 0 to 1 with at most 4 decimals, like \"0.07\"",
        )),
    }
}

/// Price units as a decimal string with 2 to 4 decimals (`"0.49"`, `"0.495"`, `"1.00"`).
pub fn format_price(units: u32) -> String {
    let scale = PRICE_SCALE;
    let mut fraction = format!("{:04}", units % scale);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{}.{fraction}", units / scale)
}

/// Basis points as a decimal rate (`700` -> `"0.07"`, `-25` -> `"-0.0025"`).
pub fn format_rate(bps: i32) -> String {
    let sign = if bps < 0 { "-" } else { "" };
    format!("{sign}{}", format_price(bps.unsigned_abs()))
}

/// An RFC 3339 time as microseconds since the epoch (not before the epoch).
pub fn parse_time_micros(raw: &str, field: &'static str) -> Result<u64, Error> {
    let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            Error::validation(field, "must be an RFC 3339 time like 2030-01-01T00:00:00Z")
        })?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000)
        .map_err(|_| Error::validation(field, "must be after 1970"))
}

/// Micro-dollars as a decimal string with 2 to 6 decimals (`"12.50"`, `"0.123456"`).
pub fn format_cash(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let per_dollar = MICROS_PER_SHARE as u64;
    let whole = magnitude / per_dollar;
    let mut fraction = format!("{:06}", magnitude % per_dollar);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{sign}{whole}.{fraction}")
}

/// The exact average of `notional_units / filled` price units, as a price with at most 6
/// decimals (an average need not sit on the tick); `None` before the first fill.
pub fn format_average_price(notional_units: u64, filled: u64) -> Option<String> {
    if filled == 0 {
        return None;
    }
    let average =
        Decimal::from(notional_units) / Decimal::from(filled) / Decimal::from(PRICE_SCALE);
    let text = average.round_dp(6).normalize().to_string();
    Some(match text.split_once('.') {
        None => format!("{text}.00"),
        Some((_, fraction)) if fraction.len() < 2 => format!("{text}0"),
        Some(_) => text,
    })
}

/// The SCREAMING_SNAKE name serde gives an engine enum (`Side::Buy` -> "BUY"); empty for a
/// value that has none.
pub fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

/// The lock rule a projection row names (its `wire_name`); an unknown name is an error.
pub fn parse_lock_rule(name: &str) -> Result<LockRule, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
}

/// Microseconds since the epoch as an RFC 3339 UTC string.
pub fn rfc3339(micros: i64) -> String {
    let nanos = i128::from(micros) * 1_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Twice a price in units (exact for a mid between two ticks) as a decimal string with 2 to 5
/// decimals (`9_001` -> `"0.45005"`).
pub fn format_half_units(units_x2: u32) -> String {
    let per_dollar_x2 = 2 * engine::units::PRICE_SCALE;
    let mut fraction = format!("{:05}", (units_x2 % per_dollar_x2) * 5);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{}.{fraction}", units_x2 / per_dollar_x2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "", "alice", "a@b", "a@@b.c", "a b@c.d", "@b.c", "a@.b.c", "a@b..c", "a@b.c.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_follow_the_length_policy() {
        let email = Email::parse("alice@example.com").unwrap();
        assert!(Password::parse("short".into(), &email).is_err());
        assert!(Password::parse(" ".repeat(20), &email).is_err());
        assert!(Password::parse("x".repeat(129), &email).is_err());
        assert!(Password::parse("alice@example.com".into(), &email).is_err());
        assert!(Password::parse("correct horse battery".into(), &email).is_ok());
        let secret = Password::parse("correct horse battery".into(), &email).unwrap();
        assert!(!format!("{secret:?}").contains("horse"));
    }

    #[test]
    fn cash_parses_exactly_or_not_at_all() {
        assert_eq!(parse_transfer_amount("100", "a").unwrap(), 100_000_000);
        assert_eq!(parse_transfer_amount("12.50", "a").unwrap(), 12_500_000);
        assert_eq!(parse_transfer_amount("0.000001", "a").unwrap(), 1);
        assert_eq!(parse_transfer_amount("1.5000000", "a").unwrap(), 1_500_000);
        for bad in [
            "",
            "0",
            "0.0000001",
            "-1",
            "+1",
            "1e3",
            "1.",
            ".5",
            " 1",
            "NaN",
            "1000000000.01",
            // Past what the decimal type holds once scaled to micros: an error, not a panic.
            "79228162514264337593543950335",
            "7922816251426433759354395033.5",
        ] {
            assert!(parse_transfer_amount(bad, "a").is_err(), "{bad}");
        }
        assert_eq!(
            parse_transfer_amount("1000000000", "a").unwrap(),
            TRANSFER_MICROS_MAX
        );
    }

    #[test]
    fn prices_parse_exactly_or_are_refused() {
        assert_eq!(parse_price_units("0.45", "p").unwrap(), 4_500);
        assert_eq!(parse_price_units("0.4500", "p").unwrap(), 4_500);
        assert_eq!(parse_price_units("0.0001", "p").unwrap(), 1);
        assert_eq!(parse_price_units(".5", "p").ok(), None);
        let code = |raw: &str| match parse_price_units(raw, "p") {
            Err(Error::Rejected(reject)) => reject.code().to_owned(),
            Err(Error::Validation { .. }) => "VALIDATION_FAILED".to_owned(),
            other => format!("{other:?}"),
        };
        assert_eq!(code("0.45001"), "PRICE_OFF_TICK");
        assert_eq!(code("0"), "PRICE_OUT_OF_RANGE");
        assert_eq!(code("1"), "PRICE_OUT_OF_RANGE");
        assert_eq!(code("99999999999999999999"), "PRICE_OUT_OF_RANGE");
        for bad in ["", "-0.5", "1e-1", " 0.5", "0,5", "0.", "NaN"] {
            assert_eq!(code(bad), "VALIDATION_FAILED", "{bad}");
        }
    }

    #[test]
    fn rates_and_payouts_parse_in_basis_points() {
        assert_eq!(parse_rate_bps("0.07", "r", false).unwrap(), 700);
        assert_eq!(parse_rate_bps("0", "r", false).unwrap(), 0);
        assert_eq!(parse_rate_bps("-0.0025", "r", true).unwrap(), -25);
        assert!(parse_rate_bps("-0.0025", "r", false).is_err());
        assert!(parse_rate_bps("0.00001", "r", false).is_err());
        assert!(parse_rate_bps("1.0001", "r", false).is_err());
        assert_eq!(parse_payout_units("1", "y").unwrap(), 10_000);
        assert_eq!(parse_payout_units("0.4", "y").unwrap(), 4_000);
        assert!(parse_payout_units("1.01", "y").is_err());
        assert_eq!(format_rate(700), "0.07");
        assert_eq!(format_rate(-25), "-0.0025");
        assert_eq!(format_price(4_950), "0.495");
        assert_eq!(format_price(10_000), "1.00");
    }

    #[test]
    fn cash_formats_with_two_to_six_decimals() {
        assert_eq!(format_cash(12_500_000), "12.50");
        assert_eq!(format_cash(123_456), "0.123456");
        assert_eq!(format_cash(0), "0.00");
        assert_eq!(format_cash(100_000_000), "100.00");
        assert_eq!(format_cash(1_230_000), "1.23");
        assert_eq!(format_cash(1_234_500), "1.2345");
        assert_eq!(format_cash(-5_000_000), "-5.00");
    }

    #[test]
    fn average_prices_are_exact_to_six_decimals() {
        assert_eq!(format_average_price(0, 0), None);
        assert_eq!(format_average_price(4_500 * 10, 10).unwrap(), "0.45");
        assert_eq!(format_average_price(4_500 + 4_600, 2).unwrap(), "0.455");
        assert_eq!(
            format_average_price(4_500 * 2 + 4_600, 3).unwrap(),
            "0.453333"
        );
        assert_eq!(format_average_price(10_000, 2).unwrap(), "0.50");
    }

    #[test]
    fn mids_keep_the_half_unit() {
        assert_eq!(format_half_units(9_000), "0.45");
        assert_eq!(format_half_units(9_001), "0.45005");
        assert_eq!(format_half_units(9_100), "0.455");
        assert_eq!(format_half_units(20_000), "1.00");
    }
}

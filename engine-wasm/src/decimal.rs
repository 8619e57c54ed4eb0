//! Decimal strings at the edge: prices, cash amounts and fee rates in, exactly; out, in the
//! API's format (API.md: cash with 2 to 6 decimals, trailing zeros trimmed past the second).
//!
//! Owns the only conversions between decimal strings and the engine's integers. It must never
//! round: a value with more precision than its unit is an error, never a nearest value.

use engine::units::{MICROS_PER_SHARE, PRICE_SCALE};
use rust_decimal::Decimal;

/// Why a decimal string was refused, named like the API's error codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a plain decimal number.
    Malformed(String),
    /// More decimals than the unit has, or outside the allowed range.
    OutOfRange(String),
}

fn parse(text: &str) -> Result<Decimal, DecimalError> {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    if !plain {
        return Err(DecimalError::Malformed(text.into()));
    }
    Decimal::from_str_exact(text).map_err(|_| DecimalError::Malformed(text.into()))
}

/// `text` times `scale`, if that is a whole number that fits in an `i64`.
fn scaled(text: &str, scale: i64) -> Result<i64, DecimalError> {
    // Checked: `*` panics when a huge input overflows the decimal type.
    let value = parse(text)?
        .checked_mul(Decimal::from(scale))
        .ok_or_else(|| DecimalError::OutOfRange(text.into()))?;
    if value.fract() != Decimal::ZERO {
        return Err(DecimalError::OutOfRange(text.into()));
    }
    i64::try_from(value).map_err(|_| DecimalError::OutOfRange(text.into()))
}

/// A price such as `"0.49"` in price units (0.0001). Whether it sits on the market's tick is the
/// engine's to judge (`PRICE_OFF_TICK`); here only its precision and range.
pub fn price_units(text: &str) -> Result<u16, DecimalError> {
    let units = scaled(text, PRICE_SCALE as i64)?;
    u16::try_from(units)
        .ok()
        .filter(|units| (1..PRICE_SCALE as u16).contains(units))
        .ok_or_else(|| DecimalError::OutOfRange(text.into()))
}

/// A payout or price that may be 0 or 1 as well (resolution payouts, best prices).
pub fn unit_interval_units(text: &str) -> Result<u16, DecimalError> {
    let units = scaled(text, PRICE_SCALE as i64)?;
    u16::try_from(units)
        .ok()
        .filter(|units| *units <= PRICE_SCALE as u16)
        .ok_or_else(|| DecimalError::OutOfRange(text.into()))
}

/// A cash amount such as `"12.50"` in micro-dollars; at most 6 decimals, not negative.
pub fn cash_micros(text: &str) -> Result<i64, DecimalError> {
    let micros = scaled(text, MICROS_PER_SHARE)?;
    if micros < 0 {
        return Err(DecimalError::OutOfRange(text.into()));
    }
    Ok(micros)
}

/// A fee rate such as `"0.07"` (7%) in basis points; a negative maker rate is a rebate.
pub fn rate_bps(text: &str) -> Result<i32, DecimalError> {
    let bps = scaled(text, 10_000)?;
    i32::try_from(bps).map_err(|_| DecimalError::OutOfRange(text.into()))
}

/// Price units as the API writes prices: `4900` -> `"0.49"`, `4950` -> `"0.495"`.
pub fn format_price(price_units: u16) -> String {
    fixed_point(price_units as i64, 4, 2)
}

/// Micro-dollars as the API writes cash: 2 to 6 decimals, trailing zeros trimmed past the
/// second (`12_500_000` -> `"12.50"`, `123_456` -> `"0.123456"`).
pub fn format_cash(micros: i64) -> String {
    fixed_point(micros, 6, 2)
}

/// `value / 10^decimals` written exactly, with trailing zeros trimmed down to `decimals_min`.
/// Digits are written by hand, in 64-bit arithmetic: this runs for every figure of every
/// preview, and the formatting machinery was most of a preview's time.
pub fn fixed_point(value: i64, decimals: u32, decimals_min: u32) -> String {
    assert!(decimals_min <= decimals && decimals <= 18);
    let magnitude = value.unsigned_abs();
    let scale = 10u64.pow(decimals);
    let (mut whole, mut fraction) = (magnitude / scale, magnitude % scale);
    let mut digits = decimals;
    while digits > decimals_min && fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    // Written right to left: fraction digits, the point, whole digits, the sign.
    let mut buffer = [b'0'; 48];
    let mut start = buffer.len();
    for _ in 0..digits {
        start -= 1;
        buffer[start] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    if digits > 0 {
        start -= 1;
        buffer[start] = b'.';
    }
    loop {
        start -= 1;
        buffer[start] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    if value < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    std::str::from_utf8(&buffer[start..])
        .expect("ASCII digits")
        .to_owned()
}

/// `numerator / denominator` rounded half to even, as an integer.
pub fn divide_half_even(numerator: i128, denominator: i128) -> i128 {
    assert!(denominator > 0);
    let quotient = numerator.div_euclid(denominator);
    let twice_remainder = 2 * numerator.rem_euclid(denominator);
    match twice_remainder.cmp(&denominator) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient & 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_or_not_at_all() {
        assert_eq!(price_units("0.49"), Ok(4_900));
        assert_eq!(price_units("0.4950"), Ok(4_950));
        assert_eq!(price_units(".0001"), Ok(1));
        assert!(matches!(
            price_units("0.00005"),
            Err(DecimalError::OutOfRange(_))
        ));
        assert!(matches!(price_units("1"), Err(DecimalError::OutOfRange(_))));
        assert!(matches!(price_units("0"), Err(DecimalError::OutOfRange(_))));
        assert!(matches!(
            price_units("-0.5"),
            Err(DecimalError::OutOfRange(_))
        ));
        for bad in ["", "abc", "0.5e1", "1,5", " 0.5", "0x1"] {
            assert!(
                matches!(price_units(bad), Err(DecimalError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(unit_interval_units("1"), Ok(10_000));
        assert_eq!(unit_interval_units("0"), Ok(0));
    }

    #[test]
    fn cash_and_rates_parse_exactly() {
        assert_eq!(cash_micros("12.50"), Ok(12_500_000));
        assert_eq!(cash_micros("0.123456"), Ok(123_456));
        assert!(cash_micros("0.1234567").is_err());
        assert!(cash_micros("-1").is_err());
        assert_eq!(rate_bps("0.07"), Ok(700));
        assert_eq!(rate_bps("-0.0025"), Ok(-25));
        assert!(rate_bps("0.00001").is_err());
    }

    #[test]
    fn fixed_point_trims_and_rounds_exactly() {
        assert_eq!(fixed_point(51_500, 5, 0), "0.515");
        assert_eq!(fixed_point(30_000, 2, 0), "300");
        assert_eq!(fixed_point(-1, 2, 0), "-0.01");
        assert_eq!(fixed_point(7, 0, 0), "7");
        assert_eq!(fixed_point(0, 4, 0), "0");
        assert_eq!(fixed_point(i64::MIN, 6, 2), "-9223372036854.775808");
        assert_eq!(divide_half_even(5, 2), 2);
        assert_eq!(divide_half_even(7, 2), 4);
        assert_eq!(divide_half_even(-5, 2), -2);
        assert_eq!(divide_half_even(10, 3), 3);
        assert_eq!(divide_half_even(-10, 3), -3);
    }

    #[test]
    fn values_format_like_the_api() {
        assert_eq!(format_price(4_900), "0.49");
        assert_eq!(format_price(4_950), "0.495");
        assert_eq!(format_price(1), "0.0001");
        assert_eq!(format_cash(12_500_000), "12.50");
        assert_eq!(format_cash(123_456), "0.123456");
        assert_eq!(format_cash(0), "0.00");
        assert_eq!(format_cash(-1_500_000), "-1.50");
        assert_eq!(format_cash(102_741_200), "102.7412");
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn huge_or_odd_numbers_are_errors_not_panics() {
        let huge = "79228162514264337593543950335";
        let odd = [
            huge,
            "-79228162514264337593543950335",
            "7922816251426433759354395033.5",
            "1e30",
            "..",
            "-",
            "0.-1",
            "00000000000000000000000000000000001",
        ];
        for text in odd {
            let _ = price_units(text);
            let _ = cash_micros(text);
            let _ = rate_bps(text);
            let _ = unit_interval_units(text);
        }
        assert!(cash_micros(huge).is_err());
    }
}

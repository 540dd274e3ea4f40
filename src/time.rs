//! Timestamps in policies (RFC 3339), HTTP-dates in responses (RFC 9110 §5.6.7), durations.
//! Unix seconds throughout; civil-date conversion after H. Hinnant's `days_from_civil`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Whole seconds since the epoch (0 for a clock before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The same as a signed number, for comparing with policy timestamps.
pub fn unix(t: SystemTime) -> i64 {
    i64::try_from(unix_secs(t)).unwrap_or(i64::MAX)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &str, from: usize, len: usize) -> Option<i64> {
    let d = s.get(from..from + len)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// `2026-03-01T12:00:00Z`, `2026-03-01T12:00:00.5+02:00` (RFC 3339 §5.6) as Unix seconds
/// (fractions are dropped). Leap seconds (`:60`) are refused.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not an RFC 3339 timestamp (2026-03-01T12:00:00Z)");
    let sep = |i: usize, c: &[u8]| s.as_bytes().get(i).is_some_and(|b| c.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err(bad());
    }
    let field = |from, len| digits(s, from, len).ok_or_else(bad);
    let (y, mo, d) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (h, mi, sec) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return Err(bad());
    }
    let mut rest = s.get(19..).ok_or_else(bad)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        rest = frac.get(n..).ok_or_else(bad)?;
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (
                digits(rest, 1, 2).ok_or_else(bad)?,
                digits(rest, 4, 2).ok_or_else(bad)?,
            );
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad()),
    };
    let t = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    // Keys live between 1970 and 9999 (and then every instant formats back as it parsed).
    if !(0..=MAX_UNIX).contains(&t) {
        return Err(format!("`{s}` is before 1970 or after 9999"));
    }
    Ok(t)
}

/// 9999-12-31T23:59:59Z.
const MAX_UNIX: i64 = 253_402_300_799;

/// Unix seconds as `2026-03-01T12:00:00Z`.
pub fn format_rfc3339(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let t = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// Unix seconds as an IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let t = unix.rem_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .get((m - 1) as usize)
    .copied()
    .unwrap_or("Jan");
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// `90s`, `15m`, `12h`, `7d` (or `0`) as seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a duration (`90s`, `15m`, `12h`, `7d`)");
    if s == "0" {
        return Ok(0);
    }
    let unit = match s.as_bytes().last() {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86_400,
        _ => return Err(bad()),
    };
    let n = s.get(..s.len() - 1).ok_or_else(bad)?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    n.parse::<u64>().map(|n| n * unit).map_err(|_| bad())
}

/// Where a moment falls in a key's validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWindow {
    NotYetValid,
    Valid,
    Expired,
}

/// Every module with key windows (api-key, request-signing, payload-crypto) decides with this
/// one rule: a key is valid from `not_before` (inclusive) until `not_after` (exclusive), so the
/// second `not_after` names is the first one in which the key is refused, as with JWT's `exp`
/// (RFC 7519 §4.1.4). Unix seconds.
pub fn key_window(now: i64, not_before: Option<i64>, not_after: Option<i64>) -> KeyWindow {
    if not_before.is_some_and(|nb| now < nb) {
        KeyWindow::NotYetValid
    } else if not_after.is_some_and(|na| now >= na) {
        KeyWindow::Expired
    } else {
        KeyWindow::Valid
    }
}

/// The configure-time check of a window: a key must be valid for at least one second.
pub fn check_key_window(not_before: Option<i64>, not_after: Option<i64>) -> Result<(), String> {
    match (not_before, not_after) {
        (Some(nb), Some(na)) if na <= nb => Err(
            "must be later than `not_before` (`not_after` is the first second the key is refused)"
                .into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_http_dates() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-03-01T12:00:00Z"), Ok(1_772_366_400));
        assert_eq!(
            parse_rfc3339("2026-03-01T14:00:00.123+02:00"),
            Ok(1_772_366_400)
        );
        assert_eq!(
            parse_rfc3339("2026-03-01t11:30:00-00:30"),
            Ok(1_772_366_400)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-01 12:00:00Z",
            "2026-03-01T12:00:00",
            "2026-03-01T24:00:00Z",
            "2026-03-01T12:00:60Z",
            "2026-03-01T12:00:00.Z",
            "2026-03-01T12:00:00+0200",
            "1772366400",
            "",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(format_rfc3339(1_772_366_400), "2026-03-01T12:00:00Z");
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), Ok(253_402_300_799));
        assert_eq!(format_rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn key_windows_include_not_before_and_exclude_not_after() {
        let (nb, na) = (Some(100), Some(200));
        assert_eq!(key_window(99, nb, na), KeyWindow::NotYetValid);
        assert_eq!(key_window(100, nb, na), KeyWindow::Valid);
        assert_eq!(key_window(199, nb, na), KeyWindow::Valid);
        assert_eq!(key_window(200, nb, na), KeyWindow::Expired);
        assert_eq!(key_window(i64::MIN, None, None), KeyWindow::Valid);
        assert!(check_key_window(nb, na).is_ok());
        assert!(check_key_window(Some(5), Some(5)).is_err());
        assert!(check_key_window(Some(6), Some(5)).is_err());
        assert!(check_key_window(None, Some(5)).is_ok());
    }
}

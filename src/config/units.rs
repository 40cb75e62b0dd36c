//! Parsing of the small value languages in the configuration: durations
//! (`90d`), sizes (`5MB`) and dates (`2025-01-31`). Pure; used by
//! `config::validate`.

use chrono::{DateTime, NaiveDate, Utc};
use std::time::Duration;

/// `90d`, `12h`, `2w`, `1y` (= 365 days), `30m`, `45s`, or a sum such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration \"{text}\": expected a number followed by a unit (s, m, h, d, w, y), as in 90d"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration \"{text}\": number too large"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let secs = match unit {
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "y" => 365 * 86_400,
            "" => {
                return Err(format!(
                    "invalid duration \"{text}\": the number needs a unit (s, m, h, d, w or y)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration \"{text}\": unknown unit \"{other}\" (use s, m, h, d, w or y)"
                ));
            }
        };
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration \"{text}\": too large"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

/// A size in bytes: `500`, `100KB`, `1.5MB`, `2GB` (KB = 1024 bytes, as the
/// spec says; `KiB`, `K` and lower case are accepted too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid size \"{text}\": expected a number with a unit, as in 5MB")
    })?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size \"{text}\": unknown unit \"{unit}\" (use B, KB, MB or GB)"
            ));
        }
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("invalid size \"{text}\": too large"));
    }
    Ok(bytes.round() as u64)
}

/// A point in time for `sent_before`/`sent_after`: either fixed or relative to
/// the pass's `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    At(DateTime<Utc>),
    Ago(Duration),
    /// The start of the current year, month, week (Monday) or day, in UTC,
    /// at each pass: "sent before this year" without editing the
    /// configuration every January.
    Start(Calendar),
}

/// A calendar period a date bound can begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    Year,
    Month,
    Week,
    Day,
}

pub const CALENDAR_WORDS: [(&str, Calendar); 4] = [
    ("start_of_year", Calendar::Year),
    ("start_of_month", Calendar::Month),
    ("start_of_week", Calendar::Week),
    ("today", Calendar::Day),
];

impl DateBound {
    pub fn resolve(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            DateBound::At(t) => *t,
            DateBound::Ago(d) => {
                now - chrono::Duration::from_std(*d).unwrap_or(chrono::TimeDelta::MAX)
            }
            DateBound::Start(period) => {
                use chrono::Datelike;
                let day = now.date_naive();
                let first = match period {
                    Calendar::Year => day.with_day(1).and_then(|d| d.with_month(1)),
                    Calendar::Month => day.with_day(1),
                    Calendar::Week => Some(
                        day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
                    ),
                    Calendar::Day => Some(day),
                };
                first
                    .unwrap_or(day)
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc()
            }
        }
    }
}

/// `2025-01-31` (midnight UTC), an RFC 3339 time, or a duration (`30d` = 30
/// days before now).
pub fn parse_date_bound(text: &str) -> Result<DateBound, String> {
    let t = text.trim();
    if let Some((_, c)) = CALENDAR_WORDS.iter().find(|(w, _)| *w == t) {
        return Ok(DateBound::Start(*c));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Ok(DateBound::At(midnight.and_utc()));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(DateBound::At(dt.with_timezone(&Utc)));
    }
    parse_duration(t).map(DateBound::Ago).map_err(|_| {
        format!("invalid date \"{text}\": expected a date like 2025-01-31, a duration like 90d, or start_of_year, start_of_month, start_of_week or today")
    })
}

/// Renders a duration the way a user would write it (`90d`, `2h30m`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("90d", 90 * 86_400),
            ("12h", 12 * 3600),
            ("2w", 14 * 86_400),
            ("1y", 365 * 86_400),
            ("2m", 120),
            ("45s", 45),
            ("1h30m", 5400),
            (" 10 m ", 600),
        ];
        for (text, secs) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        let bad = [
            ("90x", "unknown unit \"x\""),
            ("90", "needs a unit"),
            ("", "empty"),
            ("d", "expected a number"),
            ("99999999999999999999d", "too large"),
        ];
        for (text, want) in bad {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn sizes() {
        let ok = [
            ("500", 500),
            ("100KB", 102_400),
            ("5MB", 5 << 20),
            ("1.5mb", 1_572_864),
            ("2 GiB", 2 << 30),
            ("10k", 10_240),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["5XB", "MB", "", "1.2.3KB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let cases = [
            ("2025-01-31", "2025-01-31T00:00:00+00:00"),
            ("2025-01-31T12:00:00+02:00", "2025-01-31T10:00:00+00:00"),
            ("9d", "2026-01-01T00:00:00+00:00"),
        ];
        for (text, want) in cases {
            let got = parse_date_bound(text).unwrap().resolve(now);
            assert_eq!(got.to_rfc3339(), want, "{text}");
        }
        assert!(parse_date_bound("31/01/2025").is_err());
    }

    #[test]
    fn durations_format_back() {
        for (secs, text) in [
            (0, "0s"),
            (120, "2m"),
            (90 * 86_400, "90d"),
            (5400, "1h30m"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
    }

    #[test]
    fn calendar_bounds_move_with_now() {
        let now = DateTime::parse_from_rfc3339("2026-03-05T17:30:00Z")
            .unwrap()
            .to_utc();
        let cases = [
            ("start_of_year", "2026-01-01T00:00:00+00:00"),
            ("start_of_month", "2026-03-01T00:00:00+00:00"),
            // 2026-03-05 is a Thursday.
            ("start_of_week", "2026-03-02T00:00:00+00:00"),
            ("today", "2026-03-05T00:00:00+00:00"),
        ];
        for (word, want) in cases {
            let b = parse_date_bound(word).unwrap();
            assert_eq!(b.resolve(now).to_rfc3339(), want, "{word}");
        }
        let jan = DateTime::parse_from_rfc3339("2027-01-01T00:00:01Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_date_bound("start_of_year")
                .unwrap()
                .resolve(jan)
                .to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        assert!(
            parse_date_bound("start_of_decade")
                .unwrap_err()
                .contains("start_of_year")
        );
    }
}

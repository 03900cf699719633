//! Times for `cachalot stats`: the `--since/--until` arguments and the UTC
//! date-times printed in reports. Pure; everything in Unix milliseconds.

/// Parses a `--since/--until` value into Unix milliseconds. Accepted:
/// - Unix seconds, optionally with decimals: `1732471234`, `1732471234.567`;
/// - a UTC date-time `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]]` (`2024-11-24`,
///   `2024-11-24T18:00`): a missing time is midnight, a missing zone UTC;
/// - RFC 3339, which is the above with seconds and a zone:
///   `2024-11-24T18:00:00Z`, `2024-11-24T19:00:00+01:00`.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bytes = text.trim().as_bytes();
    let unix = bytes.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    let parsed = if unix && !bytes.is_empty() {
        unix_seconds(bytes)
    } else {
        date_time(bytes)
    };
    parsed.ok_or_else(|| {
        format!(
            "`{text}` is not a time: use Unix seconds (1732471234[.567]), \
             YYYY-MM-DD[THH:MM[:SS]] in UTC, or RFC 3339 (2024-11-24T18:00:00Z)"
        )
    })
}

fn unix_seconds(bytes: &[u8]) -> Option<i64> {
    let (secs, frac) = match bytes.iter().position(|&b| b == b'.') {
        Some(dot) => (&bytes[..dot], &bytes[dot + 1..]),
        None => (bytes, &b""[..]),
    };
    let secs = i64::try_from(super::line::parse_u64(secs)?).ok()?;
    let millis = fraction_millis(frac)?;
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Up to three decimals as milliseconds; more are cut. Digits only.
fn fraction_millis(frac: &[u8]) -> Option<i64> {
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((0..3).fold(0, |ms, i| {
        ms * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'))
    }))
}

/// A cursor over the date-time text.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let field = self.0.get(..n)?;
        let value = super::line::parse_u64(field)?;
        self.0 = &self.0[n..];
        i64::try_from(value).ok()
    }

    /// Consumes `b` when it is next.
    fn eat(&mut self, wanted: &[u8]) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        wanted.contains(&first).then(|| {
            self.0 = rest;
            first
        })
    }
}

fn date_time(bytes: &[u8]) -> Option<i64> {
    let mut c = Cursor(bytes);
    let year = c.digits(4)?;
    c.eat(b"-")?;
    let month = c.digits(2)?;
    c.eat(b"-")?;
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
    if c.eat(b"Tt ").is_some() {
        hour = c.digits(2)?;
        c.eat(b":")?;
        minute = c.digits(2)?;
        if c.eat(b":").is_some() {
            second = c.digits(2)?;
            if c.eat(b".").is_some() {
                let end =
                    c.0.iter()
                        .position(|b| !b.is_ascii_digit())
                        .unwrap_or(c.0.len());
                millis = fraction_millis(&c.0[..end])?;
                c.0 = &c.0[end..];
            }
        }
    }
    // RFC 3339 §5.6 allows a leap second (60).
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset_minutes = match c.eat(b"Zz+-") {
        None | Some(b'Z' | b'z') => 0,
        Some(sign) => {
            let h = c.digits(2)?;
            c.eat(b":")?;
            let m = c.digits(2)?;
            if h > 23 || m > 59 {
                return None;
            }
            if sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
    };
    if !c.0.is_empty() {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-11-24T18:00:34.567Z`.
pub fn format_millis(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (date, hour, minute, second) = split(secs);
    format!(
        "{date}T{hour:02}:{minute:02}:{second:02}.{:03}Z",
        millis.rem_euclid(1000)
    )
}

/// `2024-11-24T18:00:00Z` for the hour starting at `secs`.
pub fn format_hour(secs: i64) -> String {
    let (date, hour, minute, second) = split(secs);
    format!("{date}T{hour:02}:{minute:02}:{second:02}Z")
}

fn split(secs: i64) -> (String, i64, i64, i64) {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_24_18H: i64 = 1_732_471_200_000; // 2024-11-24T18:00:00Z

    #[test]
    fn unix_seconds_with_or_without_decimals() {
        assert_eq!(parse_time("1732471200"), Ok(NOV_24_18H));
        assert_eq!(parse_time("1732471200.5"), Ok(NOV_24_18H + 500));
        assert_eq!(parse_time("0"), Ok(0));
        assert!(parse_time("").is_err());
        assert!(parse_time(".").is_err());
    }

    #[test]
    fn utc_date_times_of_every_accepted_shape() {
        assert_eq!(parse_time("2024-11-24T18:00"), Ok(NOV_24_18H));
        assert_eq!(parse_time("2024-11-24 18:00:00"), Ok(NOV_24_18H));
        assert_eq!(parse_time("2024-11-24T18:00:00Z"), Ok(NOV_24_18H));
        assert_eq!(parse_time("2024-11-24t18:00:00.250z"), Ok(NOV_24_18H + 250));
        assert_eq!(parse_time("2024-11-24T19:30:00+01:30"), Ok(NOV_24_18H));
        assert_eq!(parse_time("2024-11-24T16:00:00-02:00"), Ok(NOV_24_18H));
        assert_eq!(parse_time("2024-11-24"), Ok(NOV_24_18H - 18 * 3_600_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2000-02-29"), Ok(951_782_400_000));
    }

    #[test]
    fn impossible_or_sloppy_dates_are_refused() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-11-31",
            "2024-11-24T24:00",
            "2024-11-24T18",
            "2024-11-24T18:00:00+0100",
            "2024-11-24T18:00:00 UTC",
            "24-11-24",
            "yesterday",
            "1732471200s",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(
            format_millis(NOV_24_18H + 34_567),
            "2024-11-24T18:00:34.567Z"
        );
        assert_eq!(format_hour(NOV_24_18H / 1000), "2024-11-24T18:00:00Z");
        assert_eq!(format_hour(0), "1970-01-01T00:00:00Z");
        for days in [-800_000, -1, 0, 59, 60, 365, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

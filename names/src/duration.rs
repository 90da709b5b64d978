//! Go's duration syntax (`300ms`, `30s`, `5m`, `1h30m`, `24h0m0s`), which Linkerd's flags, values
//! and annotations use.

use std::time::Duration;

/// A duration that is not in Go's syntax, or does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    too_long: bool,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.too_long {
            write!(f, "duration {:?} is too long", self.text)
        } else {
            write!(
                f,
                "invalid duration {:?}: expected e.g. 30s, 5m or 1h30m",
                self.text
            )
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a Go-style duration: one or more `<number><unit>` with units `ns`, `us`, `µs`, `ms`,
/// `s`, `m`, `h`, or a bare `0`. Never panics: a duration too long for [`Duration`] is an error.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = |too_long| DurationError {
        text: text.to_string(),
        too_long,
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad(false));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| bad(false))?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad(false))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad(false)),
        };
        let part = Duration::try_from_secs_f64(number * scale).map_err(|_| bad(true))?;
        total = total.checked_add(part).ok_or_else(|| bad(true))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Writes a duration as Go does (`24h0m0s`, `20s`, `1.5s`, `300ms`), so values round-trip.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 {
        return match nanos {
            0 => "0s".to_string(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = if nanos == 0 {
        String::new()
    } else {
        let digits = format!(".{nanos:09}");
        digits.trim_end_matches('0').to_string()
    };
    if h > 0 {
        format!("{h}h{m}m{s}{frac}s")
    } else if m > 0 {
        format!("{m}m{s}{frac}s")
    } else {
        format!("{s}{frac}s")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{format_duration, parse_duration};

    #[test]
    fn durations_parse_like_go() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("300ms", 300),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1_500),
            ("24h0m0s", 86_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for text in ["", "5", "5x", "m", "1h30", "-1s", "1e3s"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let err = parse_duration("99999999999999999999s").unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
        assert!(parse_duration("9223372036854775807h9223372036854775807h").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["24h0m0s", "20s", "1.5s", "300ms", "1m30s", "0s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }
}

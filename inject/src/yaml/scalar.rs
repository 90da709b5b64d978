//! Reading and writing scalars the way Kubernetes does.
//!
//! kubectl reads YAML with YAML 1.1 rules, where `yes`, `on`, `y` and their kin are booleans. So a
//! string written by mesh is quoted whenever a YAML 1.1 or 1.2 reader could take it for anything
//! but a string.

/// Formats `s` as a scalar to insert into YAML text: plain where that is unambiguous, otherwise
/// double-quoted. `json` forces JSON string syntax, for documents written as JSON.
pub fn format(s: &str, json: bool) -> String {
    if !json && is_plain_safe(s) {
        s.to_owned()
    } else {
        quote(s)
    }
}

/// A double-quoted scalar, valid both as YAML and as JSON.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Whether `s` reads back as the same string when written plain, in block or flow context.
pub fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'))
        && resolve_bool(s).is_none()
        && !matches!(s, "null" | "Null" | "NULL")
        && resolve_number(s).is_none()
}

/// The boolean a plain scalar means under YAML 1.1, if any.
pub fn resolve_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// The number a plain scalar means under YAML 1.1 and 1.2, if any.
pub fn resolve_number(s: &str) -> Option<serde_json::Number> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let radix = |prefix: &str, radix: u32| {
        digits
            .strip_prefix(prefix)
            .filter(|d| !d.is_empty())
            .and_then(|d| i64::from_str_radix(&d.replace('_', ""), radix).ok())
    };
    let int = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| {
            let d = digits.replace('_', "");
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else if d.len() > 1 && d.starts_with('0') {
                i64::from_str_radix(&d, 8).ok()
            } else {
                d.parse::<i64>().ok()
            }
        });
    if let Some(i) = int {
        return Some(if negative { -i } else { i }.into());
    }
    if is_float(digits) {
        let f: f64 = s.replace('_', "").parse().ok()?;
        return serde_json::Number::from_f64(f);
    }
    None
}

/// `1.5`, `.5`, `1.`, `1e3`, `1.5E-3`: YAML's float syntax, sign stripped.
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    // A bare integer is not a float; an exponent or a point makes it one.
    mantissa_ok && exponent_ok && (frac.is_some() || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "yes", "no", "on", "off", "y", "n", "true", "null", "1234", "0x1f", "1e3", "", "100m",
            "a b", "a:b", "a,b", "*x", "-x",
        ] {
            assert!(format(s, false).starts_with('"'), "{s} must be quoted");
        }
    }

    #[test]
    fn plain_strings_stay_plain() {
        for s in [
            "enabled",
            "linkerd.io/inject",
            "all-unauthenticated",
            "warn",
            "v1",
        ] {
            assert_eq!(format(s, false), s);
        }
    }

    #[test]
    fn json_always_quotes() {
        assert_eq!(format("enabled", true), "\"enabled\"");
        assert_eq!(format("a\"b", true), "\"a\\\"b\"");
    }

    #[test]
    fn numbers_resolve_like_yaml() {
        assert_eq!(resolve_number("42"), Some(42.into()));
        assert_eq!(resolve_number("-7"), Some((-7).into()));
        assert_eq!(resolve_number("0x10"), Some(16.into()));
        assert_eq!(resolve_number("010"), Some(8.into()));
        assert_eq!(resolve_number("1.5").map(|n| n.as_f64()), Some(Some(1.5)));
        assert_eq!(
            resolve_number("1e3").map(|n| n.as_f64()),
            Some(Some(1000.0))
        );
        assert_eq!(resolve_number("100m"), None);
        assert_eq!(resolve_number("1.2.3"), None);
        assert_eq!(resolve_number("."), None);
        assert_eq!(resolve_number("e3"), None);
    }
}

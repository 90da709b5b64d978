//! The `Date` field the proxy adds to a response that has none, as hyper's server does
//! and RFC 9110 section 6.6.1 asks of a proxy.

/// `Date` values (IMF-fixdate), formatted once a second.
#[derive(Debug, Default)]
pub struct DateCache {
    second: u64,
    value: [u8; 29],
}

impl DateCache {
    /// The value for now.
    pub fn now(&mut self) -> &[u8; 29] {
        let secs = unix_now();
        if secs != self.second || self.value[0] == 0 {
            self.second = secs;
            self.value = imf_fixdate(secs);
        }
        &self.value
    }
}

thread_local! {
    static HEADER: std::cell::RefCell<(u64, http::HeaderValue)> =
        const { std::cell::RefCell::new((u64::MAX, http::HeaderValue::from_static(""))) };
}

/// The `Date` value for now, as a header value; formatted once a second per thread.
pub fn header_value() -> http::HeaderValue {
    let secs = unix_now();
    HEADER.with_borrow_mut(|(second, value)| {
        if *second != secs {
            *second = secs;
            *value = http::HeaderValue::from_bytes(&imf_fixdate(secs))
                .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        }
        value.clone()
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for a Unix time.
pub fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), in unsigned
    // arithmetic: the epoch is shifted to 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = [0u8; 29];
    let text = format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let n = text.len().min(29);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdate() {
        let text = |secs| String::from_utf8(imf_fixdate(secs).to_vec()).unwrap();
        assert_eq!(text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(text(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(text(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(text(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
        let mut cache = DateCache::default();
        assert!(cache.now().ends_with(b" GMT"));
        assert_eq!(header_value().as_bytes(), &cache.now()[..]);
    }
}

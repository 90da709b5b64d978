//! Logging: a tracing subscriber whose filter can be read and changed at run time through
//! the admin server's `/proxy-log-level`.
//!
//! A filter may come from a request, so building one is bounded: at most
//! [`MAX_FILTER_BYTES`] and [`MAX_DIRECTIVES`], and field values in `[{field=value}]`
//! match literally. tracing-subscriber would otherwise compile each value as a regular
//! expression into a DFA, whose size is exponential in the pattern: a 110-byte filter
//! took 18 s and 530 MB to build. Linkerd's own filters name fields without values
//! (`[{headers}]=off`), so nothing they use changes.

use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogFormat;

/// The filter used when `LINKERD2_PROXY_LOG` is unset.
pub const DEFAULT_FILTER: &str = "warn,mesh_proxy=info";

/// The longest filter accepted, in bytes. Linkerd's default is under 100.
pub const MAX_FILTER_BYTES: usize = 4 * 1024;

/// The most comma-separated directives a filter may have.
pub const MAX_DIRECTIVES: usize = 64;

/// Checks that a filter parses, returning the parser's reason when it does not.
pub fn check_filter(filter: &str) -> Result<(), String> {
    build_filter(filter).map(|_| ())
}

fn build_filter(filter: &str) -> Result<EnvFilter, String> {
    if filter.len() > MAX_FILTER_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_FILTER_BYTES} allowed",
            filter.len()
        ));
    }
    let directives = filter.split(',').filter(|d| !d.trim().is_empty()).count();
    if directives > MAX_DIRECTIVES {
        return Err(format!(
            "{directives} directives, more than the {MAX_DIRECTIVES} allowed"
        ));
    }
    EnvFilter::builder()
        // Field values match their `Debug` text literally instead of compiling a regex.
        .with_regex(false)
        .parse(translate(filter))
        .map_err(|e| e.to_string())
}

/// Linkerd's filters name Linkerd's own crates (`linkerd=info`). A directive for `linkerd` or
/// `linkerd2_proxy` is applied to this crate as well, so a pod spec written for
/// linkerd2-proxy gets the log level it asked for.
fn translate(filter: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        out.push(directive.to_owned());
        let target_end = directive.find(['=', '[']).unwrap_or(directive.len());
        let target = &directive[..target_end];
        if target == "linkerd" || target == "linkerd2_proxy" {
            out.push(format!("mesh_proxy{}", &directive[target_end..]));
        }
    }
    out.join(",")
}

/// Reads and replaces the active log filter.
pub struct LogHandle {
    reload: Option<reload::Handle<EnvFilter, Registry>>,
    current: Mutex<String>,
}

impl LogHandle {
    /// A handle with no subscriber behind it, for tests that never install one.
    pub fn detached(filter: &str) -> Self {
        LogHandle {
            reload: None,
            current: Mutex::new(filter.to_owned()),
        }
    }

    /// The filter as last set, in the form it was given.
    pub fn get(&self) -> String {
        self.current
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the filter, or explains why the new one does not parse.
    pub fn set(&self, filter: &str) -> Result<(), String> {
        let filter = filter.trim();
        let parsed = build_filter(filter)?;
        if let Some(reload) = &self.reload {
            reload.reload(parsed).map_err(|e| e.to_string())?;
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *current = filter.to_owned();
        Ok(())
    }
}

/// Installs the global subscriber. The filter was validated with the configuration.
pub fn init(filter: &str, format: LogFormat) -> LogHandle {
    let parsed = build_filter(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (layer, reload) = reload::Layer::new(parsed);
    let plain = (format == LogFormat::Plain).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(plain)
        .with(json)
        .try_init()
        .is_ok();
    LogHandle {
        reload: installed.then_some(reload),
        current: Mutex::new(filter.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkerd_default_filter_parses() {
        let linkerd = "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off";
        assert_eq!(check_filter(linkerd), Ok(()));
        assert!(translate(linkerd).contains("mesh_proxy=info"));
    }

    #[test]
    fn bad_filter_is_rejected() {
        assert!(check_filter("info,foo=notalevel").is_err());
    }

    /// The body that froze the proxy for 18 s: twenty `a[a-z]` steps after a star, whose DFA
    /// has about 2^20 states. Its value is now literal text, so it builds at once.
    #[test]
    fn field_values_are_not_compiled_as_regexes() {
        let evil = format!("mesh_proxy[{{x=[a-z]*a{}}}]=info", "[a-z]".repeat(20));
        let alt = format!("mesh_proxy[{{x=(a|b)*a{}}}]=info", "(a|b)".repeat(20));
        for filter in [evil, alt] {
            let start = std::time::Instant::now();
            assert_eq!(check_filter(&filter), Ok(()), "{filter}");
            // Generous: the regex build took 18 s; a literal value takes microseconds.
            assert!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "{filter}"
            );
        }
        // A value that is not a valid regex is fine too, since it is not one.
        assert_eq!(check_filter("mesh_proxy[{x=(}]=info"), Ok(()));
    }

    #[test]
    fn filter_size_and_directive_count_are_bounded() {
        let long = format!("info,{}", "a".repeat(MAX_FILTER_BYTES));
        assert!(check_filter(&long).unwrap_err().contains("bytes"));
        let many = vec!["a=info"; MAX_DIRECTIVES + 1].join(",");
        assert!(check_filter(&many).unwrap_err().contains("directives"));
        let enough = vec!["a=info"; MAX_DIRECTIVES].join(",");
        assert_eq!(check_filter(&enough), Ok(()));
    }

    #[test]
    fn detached_handle_round_trips() {
        let h = LogHandle::detached("info");
        h.set("debug,mesh_proxy=trace").unwrap();
        assert_eq!(h.get(), "debug,mesh_proxy=trace");
        assert!(h.set("=&=").is_err());
        assert_eq!(h.get(), "debug,mesh_proxy=trace");
    }
}

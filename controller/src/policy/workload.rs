//! The `workload` of a `PortSpec`: which pod asks. Linkerd's proxies send JSON,
//! `{"ns":"<namespace>", "pod":"<name>"}` (as `LINKERD2_PROXY_POLICY_WORKLOAD` renders it, with
//! a trailing newline), and releases before 2.15 sent `<namespace>:<name>`; both are read.

use serde::Deserialize;

/// The longest workload string read: a namespace and a pod name are at most 63 and 253 bytes.
pub const MAX_LEN: usize = 1024;

/// A pod, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub pod: String,
}

/// A workload string that does not name a pod.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// Neither form, or empty parts (gRPC `InvalidArgument`, as Linkerd answers).
    #[error("Invalid workload: {0}")]
    Invalid(String),
    /// An `ExternalWorkload`, which this controller does not serve (gRPC `NotFound`).
    #[error("unknown server: external workload {0} is not served")]
    External(String),
}

impl Workload {
    pub fn parse(text: &str) -> Result<Workload, WorkloadError> {
        #[derive(Deserialize)]
        struct Json {
            ns: String,
            pod: Option<String>,
            external_workload: Option<String>,
        }
        let shown = || {
            let mut s: String = text.chars().take(MAX_LEN).collect();
            if s.len() < text.len() {
                s.push('…');
            }
            s
        };
        let invalid = || WorkloadError::Invalid(shown());
        if text.len() > MAX_LEN {
            return Err(invalid());
        }
        let text = text.trim();
        let (namespace, pod) = if text.starts_with('{') {
            let json: Json = serde_json::from_str(text).map_err(|_| invalid())?;
            match (json.pod, json.external_workload) {
                (Some(pod), None) => (json.ns, pod),
                (None, Some(external)) => {
                    return Err(WorkloadError::External(format!("{}/{external}", json.ns)));
                }
                _ => return Err(invalid()),
            }
        } else {
            let (ns, pod) = text.split_once(':').ok_or_else(invalid)?;
            (ns.to_string(), pod.to_string())
        };
        if namespace.is_empty() || pod.is_empty() {
            return Err(invalid());
        }
        Ok(Workload { namespace, pod })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, pod: &str) -> Result<Workload, WorkloadError> {
        Ok(Workload {
            namespace: ns.into(),
            pod: pod.into(),
        })
    }

    #[test]
    fn both_forms() {
        assert_eq!(Workload::parse("shop:web-1"), pod("shop", "web-1"));
        assert_eq!(
            Workload::parse("{\"ns\":\"shop\", \"pod\":\"web-1\"}\n"),
            pod("shop", "web-1")
        );
        assert!(matches!(
            Workload::parse(r#"{"ns":"shop","external_workload":"vm"}"#),
            Err(WorkloadError::External(_))
        ));
        for bad in [
            "",
            "shop",
            ":web",
            "shop:",
            r#"{"ns":"shop"}"#,
            r#"{"ns":"shop","nonsense":"x"}"#,
            r#"{"ns":"","pod":"web"}"#,
            r#"{"ns":"shop","pod":"a","external_workload":"b"}"#,
            "{not json",
        ] {
            assert!(
                matches!(Workload::parse(bad), Err(WorkloadError::Invalid(_))),
                "{bad}"
            );
        }
        let long = format!("shop:{}", "a".repeat(MAX_LEN));
        let Err(WorkloadError::Invalid(shown)) = Workload::parse(&long) else {
            panic!("a long workload is refused");
        };
        assert!(shown.len() <= MAX_LEN + 4);
    }
}

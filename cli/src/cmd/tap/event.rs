//! The tap stream: one JSON object per line, one line per finished request, as mesh-proxy's
//! admin endpoint `GET /tap` writes it.

use serde::Deserialize;

/// What a proxy saw of one request. Metadata only: no headers, no bodies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// Per proxy, counting from 0.
    pub id: u64,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub tls: String,
    /// The client and server addresses of the connection.
    pub src: String,
    pub dst: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    /// The response status, absent when no response arrived.
    pub status: Option<u16>,
    pub grpc_status: Option<u32>,
    /// What the proxy saw fail, e.g. `connect`.
    pub error: Option<String>,
    /// From the request's headers to the response's headers.
    pub latency_us: u64,
    /// From the response's headers to the end of its body.
    pub duration_us: u64,
    pub response_bytes: u64,
}

impl Event {
    /// Whether Linkerd would count the request a success.
    pub fn success(&self) -> bool {
        if self.error.is_some() {
            return false;
        }
        match (self.grpc_status, self.status) {
            (Some(code), _) => code == 0,
            (None, Some(status)) => status < 500,
            (None, None) => false,
        }
    }
}

/// A tapped event and the pod whose proxy saw it.
#[derive(Debug, Clone)]
pub struct Tapped {
    /// Index of the pod in the tapped list, for ids like Linkerd's `base:stream`.
    pub pod_index: usize,
    pub pod: String,
    pub event: Event,
}

/// Linkerd's `req`, `rsp` and `end` lines for one request; `wide` adds the pod on the
/// proxy's side of the connection (`dst_pod` inbound, `src_pod` outbound).
pub fn lines(tapped: &Tapped, wide: bool) -> String {
    let e = &tapped.event;
    let proxy = if e.direction == "outbound" {
        "out"
    } else {
        "in"
    };
    let common = format!(
        "id={}:{} proxy={proxy} src={} dst={} tls={}",
        tapped.pod_index, e.id, e.src, e.dst, e.tls
    );
    let pod = if wide {
        let side = if proxy == "out" { "src_pod" } else { "dst_pod" };
        format!(" {side}={}", tapped.pod)
    } else {
        String::new()
    };
    let mut out = format!(
        "req {common} :method={} :authority={} :path={}{pod}\n",
        e.method, e.authority, e.path
    );
    if let Some(status) = e.status {
        out.push_str(&format!(
            "rsp {common} :status={status} latency={}µs{pod}\n",
            e.latency_us
        ));
    }
    let outcome = match (&e.error, e.grpc_status) {
        (Some(error), _) => format!(" error={error}"),
        (None, Some(code)) => format!(" grpc-status={}", grpc_name(code)),
        (None, None) => String::new(),
    };
    out.push_str(&format!(
        "end {common}{outcome} duration={}µs response-length={}B{pod}\n",
        e.duration_us, e.response_bytes
    ));
    out
}

/// gRPC status codes by name, as Linkerd prints them.
fn grpc_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("Code({code})"), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tapped(json: &str) -> Tapped {
        Tapped {
            pod_index: 1,
            pod: "web-1".into(),
            event: serde_json::from_str(json).unwrap(),
        }
    }

    const OK: &str = r#"{"id":7,"direction":"inbound","tls":"no_identity","src":"10.0.0.1:5000","dst":"10.0.0.2:8080","method":"GET","authority":"web:8080","path":"/api","status":200,"grpc_status":null,"error":null,"latency_us":1500,"duration_us":20,"response_bytes":2}"#;

    #[test]
    fn lines_are_linkerds() {
        let common = "id=1:7 proxy=in src=10.0.0.1:5000 dst=10.0.0.2:8080 tls=no_identity";
        assert_eq!(
            lines(&tapped(OK), false),
            format!(
                "req {common} :method=GET :authority=web:8080 :path=/api\n\
                 rsp {common} :status=200 latency=1500µs\n\
                 end {common} duration=20µs response-length=2B\n"
            )
        );
        let wide = lines(&tapped(OK), true);
        assert!(
            wide.lines().all(|l| l.ends_with(" dst_pod=web-1")),
            "{wide}"
        );
        let grpc = OK
            .replace("\"grpc_status\":null", "\"grpc_status\":14")
            .replace("inbound", "outbound");
        let text = lines(&tapped(&grpc), true);
        assert!(text.contains("proxy=out"), "{text}");
        assert!(
            text.contains(" grpc-status=Unavailable duration=20µs"),
            "{text}"
        );
        assert!(
            text.lines().all(|l| l.ends_with(" src_pod=web-1")),
            "{text}"
        );
        assert!(!tapped(&grpc).event.success());
        assert!(tapped(OK).event.success());
        let failed = OK.replace("\"error\":null", "\"error\":\"connect\"");
        assert!(lines(&tapped(&failed), false).contains(" error=connect duration="));
        assert_eq!(grpc_name(99), "Code(99)");
    }
}

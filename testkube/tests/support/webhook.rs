//! A tiny HTTPS admission webhook for tests, on its own thread and runtime so that blocking
//! calls such as `FakeKube::create` cannot starve it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// A CA and a serving certificate it signed for `names`.
pub struct Certs {
    /// The CA's PEM, base64-encoded as `caBundle` wants it.
    pub ca_bundle: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

pub fn certs(names: &[&str]) -> Certs {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("a CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("a serving key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .expect("serving params")
        .signed_by(&leaf_key, &issuer)
        .expect("a serving certificate");
    Certs {
        ca_bundle: STANDARD.encode(ca.pem()),
        chain: vec![leaf.der().clone()],
        key: leaf_key.serialize_der(),
    }
}

/// What the webhook answers to a review: the `response` without `uid`.
pub type Respond = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// Serves `respond` over TLS with `certs` on 127.0.0.1, answering after `delay`.
pub fn serve(certs: &Certs, delay: Duration, respond: Respond) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certs.key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs.chain.clone(), key)
        .expect("a server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let respond = respond.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let respond = respond.clone();
                            async move {
                                let body = req.into_body().collect().await?.to_bytes();
                                let review: Value =
                                    serde_json::from_slice(&body).unwrap_or(Value::Null);
                                tokio::time::sleep(delay).await;
                                let mut response = respond(&review);
                                if response.get("uid").is_none() {
                                    response["uid"] = review["request"]["uid"].clone();
                                }
                                let answer = json!({
                                    "apiVersion": "admission.k8s.io/v1",
                                    "kind": "AdmissionReview",
                                    "response": response,
                                });
                                let bytes = serde_json::to_vec(&answer).unwrap_or_default();
                                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                                    bytes::Bytes::from(bytes),
                                )))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    addr
}

/// A response adding label `injected: "true"` (and the labels map when missing).
pub fn label_patch(review: &Value) -> Value {
    let has_labels = review["request"]["object"]["metadata"]["labels"].is_object();
    let mut ops = Vec::new();
    if !has_labels {
        ops.push(json!({ "op": "add", "path": "/metadata/labels", "value": {} }));
    }
    ops.push(json!({ "op": "add", "path": "/metadata/labels/injected", "value": "true" }));
    json!({
        "allowed": true,
        "patchType": "JSONPatch",
        "patch": STANDARD.encode(serde_json::to_vec(&ops).unwrap_or_default()),
        "warnings": ["labelled by \"the\" test"],
    })
}

/// A `MutatingWebhookConfiguration` with one webhook for pod (and service) creation through
/// Service `mesh/hook` port 443, path `/inject`.
pub fn configuration(name: &str, ca_bundle: &str, extra: Value) -> Value {
    let mut webhook = json!({
        "name": format!("{name}.example.com"),
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": {
            "service": { "namespace": "mesh", "name": "hook", "path": "/inject" },
            "caBundle": ca_bundle,
        },
        "rules": [{
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods", "services"],
        }],
        "namespaceSelector": {
            "matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["mesh", "kube-system"],
            }],
        },
    });
    if let (Some(w), Value::Object(extra)) = (webhook.as_object_mut(), extra) {
        w.extend(extra);
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": name },
        "webhooks": [webhook],
    })
}

//! The pod port-forward subresource through kube-rs's `Api::<Pod>::portforward`, the call
//! `mesh identity` makes.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use mesh_testkube::FakeKube;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0\n  namespace: demo\n\
                   spec:\n  containers: [{name: web, image: web}]\nstatus: {phase: Running}\n";

async fn client(server: &FakeKube) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("the kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("the kubeconfig loads");
    config.default_retry = false;
    Client::try_from(config).expect("a client")
}

/// A TCP server that answers every read with `echo:` and the bytes read, until its peer closes.
async fn echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut out = b"echo:".to_vec();
                    out.extend_from_slice(&buf[..n]);
                    if stream.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn bytes_flow_both_ways_to_the_registered_address() {
    let server = FakeKube::builder().fixture_yaml(POD).start().unwrap();
    let addr = echo_server().await;
    server.set_pod_proxy("demo", "web-0", 4143, addr);
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "demo");

    let mut forwarder = pods.portforward("web-0", &[4143]).await.unwrap();
    let mut stream = forwarder.take_stream(4143).unwrap();
    for round in 0..3 {
        let sent = format!("hello {round}");
        stream.write_all(sent.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&buf[..n]), format!("echo:{sent}"));
    }
    drop(stream);
    tokio::time::timeout(Duration::from_secs(5), forwarder.join())
        .await
        .expect("the forward ends once its stream is dropped")
        .unwrap();
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == "GET /api/v1/namespaces/demo/pods/web-0/portforward?&ports=4143"),
        "{requests:?}"
    );
}

#[tokio::test]
async fn an_unregistered_port_reports_connection_refused_on_its_error_channel() {
    let server = FakeKube::builder().fixture_yaml(POD).start().unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "demo");

    let mut forwarder = pods.portforward("web-0", &[4143]).await.unwrap();
    let mut stream = forwarder.take_stream(4143).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(5), forwarder.take_error(4143).unwrap())
        .await
        .expect("the error in time")
        .expect("an error message");
    assert!(
        error.starts_with("error forwarding port 4143 to pod web-0_demo")
            && error.ends_with("connect: connection refused"),
        "{error}"
    );
    // The data stream then ends: nothing is ever read from it.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the stream ends in time")
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn an_unknown_pod_is_a_404() {
    let server = FakeKube::builder().fixture_yaml(POD).start().unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "demo");
    match pods.portforward("nope", &[4143]).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.message, "pods \"nope\" not found");
        }
        Err(other) => panic!("expected a 404, got {other}"),
        Ok(_) => panic!("expected a 404, got a connection"),
    }
}

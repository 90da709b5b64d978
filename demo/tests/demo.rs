//! The demo's roles, as real servers on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_demo::faults::Faults;
use tokio::net::TcpListener;

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}

/// Starts books and authors with the given failure rates and a web in front; returns web's URL.
async fn start(books_rate: f64, authors_rate: f64) -> String {
    let (books, books_addr) = listener().await;
    let (authors, authors_addr) = listener().await;
    let (web, web_addr) = listener().await;
    let faults = |rate| Faults::new(rate, Duration::ZERO).expect("faults");
    tokio::spawn(mesh_demo::books::run(books, faults(books_rate)));
    tokio::spawn(mesh_demo::authors::run(authors, faults(authors_rate)));
    let (b, a) = (
        format!("http://{books_addr}"),
        format!("http://{authors_addr}"),
    );
    tokio::spawn(async move { mesh_demo::web::run(web, &b, &a).await });
    format!("http://{web_addr}/")
}

async fn get(url: &str) -> (u16, String) {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn web_answers_with_a_book_and_its_author() {
    let url = start(0.0, 0.0).await;
    let (code, body) = get(&url).await;
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["book"]["id"], 0);
    assert_eq!(json["book"]["title"], mesh_demo::web::expected_title(0));
    assert_eq!(json["author"]["name"], mesh_demo::authors::name(0));
    let (code, body) = get(&url).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(mesh_demo::web::expected_title(1)), "{body}");
}

#[tokio::test]
async fn the_failure_knob_fails_that_fraction_through_web() {
    // Half of the gRPC back end's requests fail: every second one.
    let url = start(0.0, 0.5).await;
    let tally = mesh_demo::load::run(&url, 200, Some(20), Duration::from_secs(60))
        .await
        .expect("load");
    assert_eq!((tally.ok, tally.failed), (10, 10));
    // And the HTTP/1 back end's failures show as 502 naming it.
    let url = start(1.0, 0.0).await;
    let (code, body) = get(&url).await;
    assert_eq!(code, 502);
    assert!(body.starts_with("books:"), "{body}");
}

#[tokio::test]
async fn grpc_errors_carry_a_status_and_unknown_methods_are_unimplemented() {
    let (authors, addr) = listener().await;
    tokio::spawn(mesh_demo::authors::run(
        authors,
        Faults::new(1.0, Duration::ZERO).expect("faults"),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_lazy();
    let status = mesh_demo::authors::get(channel, 3)
        .await
        .expect_err("fails");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    // A plain HTTP/2 POST to another path, as grpcurl would send.
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-X",
            "POST",
            "-H",
            "content-type: application/grpc",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .arg(format!("http://{addr}/mesh.demo.Authors/Nope"))
        .output()
        .await
        .expect("curl");
    let headers = String::from_utf8_lossy(&out.stdout);
    assert!(headers.contains("grpc-status: 12"), "{headers}");
}

#[test]
fn faults_fail_exactly_the_fraction() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    for (rate, want) in [(0.0, 0), (0.1, 10), (0.25, 25), (1.0, 100)] {
        let f = Faults::new(rate, Duration::ZERO).expect("faults");
        let failed = rt.block_on(async {
            let mut n = 0;
            for _ in 0..100 {
                n += u32::from(f.next().await);
            }
            n
        });
        assert_eq!(failed, want, "rate {rate}");
    }
    assert!(Faults::new(1.5, Duration::ZERO).is_err());
    assert!(Faults::new(-0.1, Duration::ZERO).is_err());
}

#[test]
fn latency_delays_each_request() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let f = Faults::new(0.0, Duration::from_millis(150)).expect("faults");
    let elapsed = rt.block_on(async {
        let start = tokio::time::Instant::now();
        f.next().await;
        start.elapsed()
    });
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
}

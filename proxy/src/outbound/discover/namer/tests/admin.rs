//! `GET` and `PUT /dtab` through a real admin server on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::admin::Admin;
use crate::config::{NamerConfig, ShutdownEndpoint};
use crate::drain::Shutdown;
use crate::dtab::Dtab;
use crate::log::LogHandle;
use crate::metrics::Metrics;
use crate::outbound::discover::namer::Namer;
use crate::outbound::discover::{Resolution, Resolve};
use crate::target::Logical;

async fn serve(namer: Option<Arc<Namer>>) -> SocketAddr {
    let admin = Admin::new(
        Arc::new(Metrics::new()),
        Arc::new(LogHandle::detached("info")),
        Shutdown::new().trigger(),
        ShutdownEndpoint::Enabled,
    )
    .with_namer(namer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Arc::new(admin).serve(listener));
    addr
}

/// Sends one request and returns the status and body.
async fn request(addr: SocketAddr, method: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} /dtab HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut res = Vec::new();
        sock.read_to_end(&mut res).await.unwrap();
        res
    };
    let res = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .expect("the admin server answers within 5s");
    let res = String::from_utf8(res).unwrap();
    let status = res[9..12].parse().unwrap();
    let body = res.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn put_replaces_and_get_prints_the_dtab() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b"), "10.0.0.2:80\n").unwrap();
    let config = NamerConfig {
        dtab: Dtab::parse("/svc => /#/io.l5d.fs").unwrap(),
        dir: dir.path().to_owned(),
    };
    let namer = Arc::new(Namer::new(&config).unwrap());
    let rx = namer.resolve(&Logical::Name("web".into(), 80)).unwrap();
    let addr = serve(Some(namer.clone())).await;

    assert_eq!(
        request(addr, "GET", "").await,
        (200, "/svc => /#/io.l5d.fs\n".into())
    );

    let (status, body) = request(addr, "PUT", "/svc=>/#/io.l5d.fs/b # all to b\n").await;
    assert_eq!((status, body.as_str()), (200, "/svc => /#/io.l5d.fs/b\n"));
    assert_eq!(
        request(addr, "GET", "").await,
        (200, "/svc => /#/io.l5d.fs/b\n".into())
    );
    // The watched name was re-evaluated before the answer.
    let Resolution::Backends(backends) = &rx.borrow().resolution else {
        panic!()
    };
    assert_eq!(&*backends[0].name, "/#/io.l5d.fs/b");

    let (status, body) = request(addr, "PUT", "/svc => /a;\n/b =>> /c").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at 2:6"), "{body}");
    // Unchanged.
    assert_eq!(
        request(addr, "GET", "").await,
        (200, "/svc => /#/io.l5d.fs/b\n".into())
    );

    let (status, _) = request(addr, "PUT", &"#".repeat(crate::dtab::MAX_DTAB_LEN + 1)).await;
    assert_eq!(status, 413);
    let (status, _) = request(addr, "POST", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn without_a_namer_dtab_is_not_found() {
    let addr = serve(None).await;
    for method in ["GET", "PUT"] {
        let (status, body) = request(addr, method, "/svc => ~").await;
        assert_eq!(status, 404);
        assert!(body.contains("without a namer"), "{body}");
    }
}

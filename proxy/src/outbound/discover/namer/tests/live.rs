use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::NamerConfig;
use crate::dtab::Dtab;
use crate::outbound::discover::namer::Namer;
use crate::outbound::discover::{Destination, Resolution, Resolve};
use crate::target::Logical;

/// How long a change may take to reach a receiver.
const WITHIN: Duration = Duration::from_secs(1);

fn namer(dir: &Path, dtab: &str) -> Namer {
    let config = NamerConfig {
        dtab: Dtab::parse(dtab).unwrap(),
        dir: dir.to_owned(),
    };
    Namer::new(&config).unwrap()
}

fn web() -> Logical {
    Logical::Name("web".into(), 80)
}

/// Each backend's name, weight and endpoint addresses.
type Answer = Vec<(String, u32, Vec<String>)>;

fn answer(d: &Destination) -> Option<Answer> {
    let Resolution::Backends(backends) = &d.resolution else {
        return None;
    };
    Some(
        backends
            .iter()
            .map(|b| {
                let addrs = b.endpoints.iter().map(|e| e.addr.to_string()).collect();
                (b.name.to_string(), b.weight, addrs)
            })
            .collect(),
    )
}

/// Polls until the receiver holds `want`, for at most `within`; the last answer otherwise.
fn wait(
    rx: &watch::Receiver<Arc<Destination>>,
    want: &Answer,
    within: Duration,
) -> Result<Duration, Option<Answer>> {
    let started = Instant::now();
    loop {
        let got = answer(&rx.borrow());
        if got.as_ref() == Some(want) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(got);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn expect(rx: &watch::Receiver<Arc<Destination>>, want: Answer) -> Duration {
    match wait(rx, &want, WITHIN) {
        Ok(took) => took,
        Err(got) => panic!("wanted {want:?} within {WITHIN:?}, have {got:?}"),
    }
}

fn one(name: &str, addrs: &[&str]) -> Answer {
    vec![(
        name.into(),
        1_000_000,
        addrs.iter().map(|a| a.to_string()).collect(),
    )]
}

fn negative() -> Answer {
    vec![("/svc/web".into(), 1, vec![])]
}

#[test]
fn file_edits_reach_receivers_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let namer = namer(dir.path(), "/svc => /#/io.l5d.fs");
    let rx = namer.resolve(&web()).unwrap();
    expect(&rx, negative());
    let file = dir.path().join("web");
    std::fs::write(&file, "10.0.0.1:80\n").unwrap();
    expect(&rx, one("/#/io.l5d.fs/web", &["10.0.0.1:80"]));
    // The same size, at once: only the contents differ.
    std::fs::write(&file, "10.0.0.2:80\n").unwrap();
    let took = expect(&rx, one("/#/io.l5d.fs/web", &["10.0.0.2:80"]));
    assert!(took < WITHIN, "{took:?}");
    std::fs::write(&file, "").unwrap();
    expect(&rx, one("/#/io.l5d.fs/web", &[]));
    std::fs::remove_file(&file).unwrap();
    expect(&rx, negative());
}

#[test]
fn a_file_that_appears_takes_over_from_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old"), "10.0.0.1:80\n").unwrap();
    let namer = namer(
        dir.path(),
        "/svc => /#/io.l5d.fs/old; /svc => /#/io.l5d.fs/new",
    );
    let rx = namer.resolve(&web()).unwrap();
    expect(&rx, one("/#/io.l5d.fs/old", &["10.0.0.1:80"]));
    std::fs::write(dir.path().join("new"), "10.0.0.9:80\n").unwrap();
    expect(&rx, one("/#/io.l5d.fs/new", &["10.0.0.9:80"]));
    std::fs::remove_file(dir.path().join("new")).unwrap();
    expect(&rx, one("/#/io.l5d.fs/old", &["10.0.0.1:80"]));
}

#[test]
fn unions_become_weighted_backends_with_labels_and_identities() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v1"),
        "10.0.0.1:80 tls=web.ns.serviceaccount.identity.linkerd.cluster.local\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("v2"), "10.0.0.2:80\n").unwrap();
    let namer = namer(
        dir.path(),
        "/svc/web => 3 * /#/io.l5d.fs/v1 & 1 * /#/io.l5d.fs/v2 & 1 * ~",
    );
    let rx = namer.resolve(&web()).unwrap();
    expect(
        &rx,
        vec![
            (
                "/#/io.l5d.fs/v1".into(),
                750_000,
                vec!["10.0.0.1:80".into()],
            ),
            (
                "/#/io.l5d.fs/v2".into(),
                250_000,
                vec!["10.0.0.2:80".into()],
            ),
        ],
    );
    let d = rx.borrow().clone();
    let Resolution::Backends(backends) = &d.resolution else {
        panic!()
    };
    let v1 = &backends[0].endpoints[0];
    assert_eq!(
        v1.identity.as_deref(),
        Some("web.ns.serviceaccount.identity.linkerd.cluster.local")
    );
    assert_eq!(&*v1.labels, &[("dst_service".into(), "v1".into())]);
    assert_eq!(
        &*backends[1].endpoints[0].labels,
        &[("dst_service".into(), "v2".into())]
    );
}

#[test]
fn set_dtab_re_evaluates_every_watched_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "10.0.0.1:80\n").unwrap();
    std::fs::write(dir.path().join("b"), "10.0.0.2:80\n").unwrap();
    let namer = namer(dir.path(), "/svc => /#/io.l5d.fs/a");
    let web = namer.resolve(&web()).unwrap();
    let api = namer.resolve(&Logical::Name("api".into(), 8080)).unwrap();
    expect(&web, one("/#/io.l5d.fs/a", &["10.0.0.1:80"]));
    expect(&api, one("/#/io.l5d.fs/a", &["10.0.0.1:80"]));
    let dtab = Dtab::parse("/svc => /#/io.l5d.fs/a; /svc/web => /#/io.l5d.fs/b").unwrap();
    namer.set_dtab(dtab.clone());
    assert_eq!(*namer.dtab(), dtab);
    // Done when set_dtab returns: no waiting.
    assert_eq!(
        answer(&web.borrow()),
        Some(one("/#/io.l5d.fs/b", &["10.0.0.2:80"]))
    );
    assert_eq!(
        answer(&api.borrow()),
        Some(one("/#/io.l5d.fs/a", &["10.0.0.1:80"]))
    );
    namer.set_dtab(Dtab::parse("/svc => !").unwrap());
    assert_eq!(answer(&web.borrow()), Some(negative()));
}

#[test]
fn names_are_hosts_and_addresses_are_not_handled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web"), "10.0.0.1:80\n").unwrap();
    let namer = namer(dir.path(), "/svc => /#/io.l5d.fs");
    assert!(
        namer
            .resolve(&Logical::Addr("10.0.0.1:80".parse().unwrap()))
            .is_none()
    );
    let a = namer.resolve(&Logical::Name("web".into(), 80)).unwrap();
    let b = namer.resolve(&Logical::Name("web".into(), 8080)).unwrap();
    assert!(a.same_channel(&b), "the port is not part of the name");
    expect(&b, one("/#/io.l5d.fs/web", &["10.0.0.1:80"]));
    let long = Logical::Name("x".repeat(300).into(), 80);
    let rx = namer.resolve(&long).unwrap();
    assert_eq!(answer(&rx.borrow()).map(|a| a[0].2.len()), Some(0));
}

#[test]
fn names_nobody_watches_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let namer = namer(dir.path(), "/svc => /#/io.l5d.fs");
    let rx = namer.resolve(&web()).unwrap();
    expect(&rx, negative());
    let watched = || namer.shared.names.lock().unwrap().len();
    assert_eq!(watched(), 1);
    drop(rx);
    let deadline = Instant::now() + WITHIN;
    while watched() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(watched(), 0);
    assert!(namer.shared.work.lock().unwrap().files.is_empty());
}

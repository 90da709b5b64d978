use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::*;
use crate::outbound::discover::{Backend, Destination, Endpoint, Resolution};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn set(ports: &[u16]) -> Destination {
    Destination::endpoints(
        "web",
        ports.iter().map(|p| Endpoint::bare(addr(*p))).collect(),
    )
}

fn settings(algorithm: Algorithm) -> BalanceSettings {
    BalanceSettings {
        algorithm,
        accrual: AccrualSettings {
            max_failures: 5,
            min_penalty: Duration::from_millis(50),
            max_penalty: Duration::from_millis(400),
        },
        discovery_wait: DiscoveryWait(Duration::from_millis(50)),
    }
}

/// Picks `n` times with eight requests in flight, each answering in a millisecond.
async fn counts(b: &Balancer, n: usize) -> std::collections::HashMap<u16, usize> {
    let mut seen = std::collections::HashMap::new();
    let mut in_flight = std::collections::VecDeque::new();
    for _ in 0..n {
        let p = b.pick().await.unwrap();
        *seen.entry(p.addr().port()).or_insert(0) += 1;
        in_flight.push_back(p);
        if in_flight.len() == 8
            && let Some(mut p) = in_flight.pop_front()
        {
            p.responded(200, Duration::from_millis(1));
        }
    }
    seen
}

#[tokio::test]
async fn a_fixed_balancer_is_its_address() {
    let b = Balancer::fixed(addr(1), settings(Algorithm::PeakEwma));
    for _ in 0..10 {
        let mut p = b.pick().await.unwrap();
        assert_eq!(p.addr(), addr(1));
        p.failed();
    }
    // Failures never eject an original destination.
    assert_eq!(b.endpoints(), vec![(addr(1), 0, false)]);
}

#[tokio::test]
async fn every_algorithm_spreads_requests_over_the_set() {
    for alg in [
        Algorithm::PeakEwma,
        Algorithm::LeastLoaded,
        Algorithm::RoundRobin,
    ] {
        let (_tx, rx) = watch::channel(Arc::new(set(&[1, 2, 3])));
        let b = Balancer::discovered("web", rx, None, settings(alg));
        let seen = counts(&b, 3000).await;
        assert_eq!(seen.len(), 3, "{alg:?}: {seen:?}");
        for (port, n) in &seen {
            assert!(*n > 500, "{alg:?}: endpoint {port} got {n} of 3000");
        }
    }
}

/// Requests to endpoint 3 take 100 times as long: each stays in flight for 100 picks,
/// a fast one for one. Peak EWMA (through the requests in flight it weighs, before its
/// estimates settle) and least-loaded send the slow endpoint little; round robin a third.
#[tokio::test]
async fn p2c_avoids_a_slow_endpoint_and_round_robin_does_not() {
    for alg in [
        Algorithm::PeakEwma,
        Algorithm::LeastLoaded,
        Algorithm::RoundRobin,
    ] {
        let (_tx, rx) = watch::channel(Arc::new(set(&[1, 2, 3])));
        let b = Balancer::discovered("web", rx, None, settings(alg));
        let mut in_flight: Vec<(usize, Duration, Picked)> = Vec::new();
        let mut slow = 0;
        for tick in 0..3000 {
            let p = b.pick().await.unwrap();
            let (rtt, hold) = if p.addr().port() == 3 {
                slow += 1;
                (Duration::from_millis(20), 100)
            } else {
                (Duration::from_micros(200), 1)
            };
            in_flight.push((tick + hold, rtt, p));
            in_flight.retain_mut(|(due, rtt, p)| {
                let keep = *due > tick;
                if !keep {
                    p.responded(200, *rtt);
                }
                keep
            });
        }
        let share = f64::from(slow) / 3000.0;
        match alg {
            Algorithm::RoundRobin => assert!(share > 0.3, "{alg:?}: {share}"),
            _ => assert!(share < 0.05, "{alg:?}: {share}"),
        }
    }
}

#[tokio::test]
async fn least_loaded_prefers_fewer_requests_in_flight() {
    let (_tx, rx) = watch::channel(Arc::new(set(&[1, 2])));
    let b = Balancer::discovered("web", rx, None, settings(Algorithm::LeastLoaded));
    let held = b.pick().await.unwrap();
    for _ in 0..50 {
        let p = b.pick().await.unwrap();
        assert_ne!(p.addr(), held.addr());
    }
}

#[tokio::test]
async fn updates_take_effect_and_requests_in_flight_survive_them() {
    let (tx, rx) = watch::channel(Arc::new(set(&[1, 2])));
    let b = Balancer::discovered("web", rx, None, settings(Algorithm::PeakEwma));
    let mut in_flight = b.pick().await.unwrap();
    tx.send_replace(Arc::new(set(&[3])));
    let seen = counts(&b, 50).await;
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![3]);
    // The request picked before the update still records on its endpoint.
    in_flight.responded(200, Duration::from_millis(1));
    tx.send_replace(Arc::new(set(&[])));
    assert!(matches!(b.pick().await, Err(PickError::Unavailable { .. })));
}

#[tokio::test]
async fn consecutive_failures_eject_and_probation_restores() {
    let (_tx, rx) = watch::channel(Arc::new(set(&[1, 2])));
    let b = Balancer::discovered("web", rx, None, settings(Algorithm::RoundRobin));
    // Endpoint 1 fails, 2 answers.
    for _ in 0..20 {
        let mut p = b.pick().await.unwrap();
        if p.addr().port() == 1 {
            p.failed();
        } else {
            p.responded(200, Duration::from_millis(1));
        }
    }
    assert!(
        b.endpoints().contains(&(addr(1), 0, true)),
        "{:?}",
        b.endpoints()
    );
    let seen = counts(&b, 20).await;
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![2]);
    // Both ejected: fail fast.
    for _ in 0..5 {
        b.pick().await.unwrap().failed();
    }
    let started = Instant::now();
    assert!(matches!(b.pick().await, Err(PickError::Unavailable { .. })));
    assert!(started.elapsed() < Duration::from_millis(20));
    // After the penalty, on probation: a success restores the endpoint.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut p = loop {
        match b.pick().await {
            Ok(p) => break p,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(e) => panic!("never on probation: {e}"),
        }
    };
    p.responded(200, Duration::from_millis(1));
    assert!(b.endpoints().iter().any(|(_, _, ejected)| !ejected));
}

#[tokio::test]
async fn a_failure_on_probation_doubles_the_penalty() {
    let a = accrual::Accrual::default();
    let s = settings(Algorithm::PeakEwma).accrual;
    let t0 = Instant::now();
    for _ in 0..5 {
        a.record(false, t0, &s);
    }
    assert!(!a.available(t0 + Duration::from_millis(49)));
    assert!(a.available(t0 + Duration::from_millis(50)));
    a.record(false, t0 + Duration::from_millis(50), &s);
    assert!(!a.available(t0 + Duration::from_millis(149)));
    assert!(a.available(t0 + Duration::from_millis(150)));
    // The penalty stops growing at the maximum.
    let mut t = t0 + Duration::from_millis(150);
    for _ in 0..10 {
        a.record(false, t, &s);
        t += Duration::from_millis(400);
    }
    assert!(a.available(t));
    a.record(true, t, &s);
    assert!(a.available(t));
}

#[tokio::test]
async fn weighted_backends_split_traffic() {
    let backend = |name: &str, weight, port| Backend {
        name: name.into(),
        weight,
        endpoints: vec![Endpoint::bare(addr(port))].into(),
    };
    let answer = Destination {
        resolution: Resolution::Backends(vec![backend("v1", 9, 1), backend("v2", 1, 2)].into()),
        profile: None,
    };
    let (_tx, rx) = watch::channel(Arc::new(answer));
    let b = Balancer::discovered("web", rx, None, settings(Algorithm::PeakEwma));
    let seen = counts(&b, 10_000).await;
    let v2 = seen.get(&2).copied().unwrap_or(0);
    assert!((800..1200).contains(&v2), "v2 got {v2} of 10000");
}

#[tokio::test]
async fn an_unknown_target_goes_to_its_original_destination() {
    let (tx, rx) = watch::channel(Arc::new(Destination::default()));
    let b = Balancer::discovered("web", rx, Some(addr(9)), settings(Algorithm::PeakEwma));
    // No answer within the discovery wait: the original destination.
    assert_eq!(b.pick().await.unwrap().addr(), addr(9));
    tx.send_replace(Arc::new(set(&[1])));
    assert_eq!(b.pick().await.unwrap().addr(), addr(1));
    tx.send_replace(Arc::new(Destination::unknown()));
    assert_eq!(b.pick().await.unwrap().addr(), addr(9));

    let (_tx, rx) = watch::channel(Arc::new(Destination::unknown()));
    let b = Balancer::discovered("web", rx, None, settings(Algorithm::PeakEwma));
    assert!(matches!(b.pick().await, Err(PickError::Unknown { .. })));
}

/// A new endpoint among measured ones starts at their estimate and takes traffic at once,
/// even from a client with one request at a time.
#[tokio::test]
async fn a_new_endpoint_competes_at_once() {
    let (tx, rx) = watch::channel(Arc::new(set(&[1, 2])));
    let b = Balancer::discovered("web", rx, None, settings(Algorithm::PeakEwma));
    for _ in 0..200 {
        b.pick()
            .await
            .unwrap()
            .responded(200, Duration::from_micros(300));
    }
    tx.send_replace(Arc::new(set(&[1, 2, 3])));
    let mut new = 0;
    for _ in 0..300 {
        let mut p = b.pick().await.unwrap();
        new += usize::from(p.addr().port() == 3);
        p.responded(200, Duration::from_micros(300));
    }
    assert!(new > 30, "the new endpoint got {new} of 300");
}

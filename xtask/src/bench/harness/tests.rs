use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn interleave_runs_round_by_round_and_drops_a_failed_target() {
    let mut order = Vec::new();
    let outcomes = interleave(3, &["a", "b"], |&t| {
        order.push(t);
        match (t, order.len()) {
            ("b", 4) => anyhow::bail!("broke"),
            _ => Ok(order.len()),
        }
    });
    // b fails in round 2 and is not measured in round 3.
    assert_eq!(order, ["a", "b", "a", "b", "a"]);
    assert_eq!(outcomes[0], Ok(vec![1, 3, 5]));
    assert_eq!(outcomes[1], Err("round 2: broke".to_string()));
}

#[test]
fn common_flags_and_their_errors() {
    let mut common = Common {
        rounds: 5,
        duration: Duration::from_secs(10),
        warm_up: Duration::from_secs(3),
        connections: 16,
        mesh_bin: None,
        mesh_env: Vec::new(),
        load_cpu: 1,
    };
    let a = args(&["--rounds", "0", "--warm-up", "0", "--mesh-env", "A=b=c"]);
    let mut flags = Flags::new(&a, "usage");
    while flags.next_flag().is_some() {
        common.take(&mut flags).unwrap();
    }
    assert_eq!((common.rounds, common.warm_up), (1, Duration::ZERO));
    assert_eq!(common.mesh_env, [("A".to_string(), "b=c".to_string())]);

    let error = |a: &[&str]| {
        let a = args(a);
        let mut flags = Flags::new(&a, "usage");
        flags.next_flag();
        format!("{:#}", common.clone().take(&mut flags).unwrap_err())
    };
    assert_eq!(error(&["--fast"]), "unknown flag \"--fast\"\n\nusage");
    assert_eq!(error(&["--rounds"]), "--rounds needs a value\n\nusage");
    assert_eq!(
        error(&["--duration", "x"]),
        "invalid value \"x\" for --duration: expected a number: invalid digit found in string"
    );
}

use crate::dtab::Dtab;
use crate::outbound::discover::namer::delegate::{
    DelegateError, Delegation, MAX_DEPTH, Share, Target, delegate,
};

/// Delegates `/svc/web` through `dtab` with these files present.
fn eval(dtab: &str, files: &[&str]) -> Result<Delegation, DelegateError> {
    let dtab = Dtab::parse(dtab).unwrap_or_else(|e| panic!("{dtab:?}: {e}"));
    let path = vec![b"svc".to_vec(), b"web".to_vec()];
    delegate(&dtab, &path, &mut |name| files.contains(&name))
}

/// The bound files and their shares, or panics.
fn shares(dtab: &str, files: &[&str]) -> Vec<(String, f64)> {
    match eval(dtab, files) {
        Ok(Delegation::Bound(shares)) => shares
            .into_iter()
            .map(|Share { target, weight }| {
                let name = match target {
                    Target::File(name) => name,
                    Target::Empty => "$".into(),
                };
                (name, weight)
            })
            .collect(),
        other => panic!("{dtab:?} with {files:?}: {other:?}"),
    }
}

fn assert_shares(dtab: &str, files: &[&str], want: &[(&str, f64)]) {
    let got = shares(dtab, files);
    assert_eq!(got.len(), want.len(), "{dtab:?}: {got:?}");
    for ((name, weight), (want_name, want_weight)) in got.iter().zip(want) {
        assert_eq!(name, want_name, "{dtab:?}: {got:?}");
        assert!((weight - want_weight).abs() < 1e-9, "{dtab:?}: {got:?}");
    }
}

const FS: &str = "/#/io.l5d.fs";

#[test]
fn the_last_matching_rule_wins() {
    let dtab = format!("/svc => {FS}/a; /svc => {FS}/b");
    assert_shares(&dtab, &["a", "b"], &[("b", 1.0)]);
    // A more specific rule earlier loses to a later general one: order, not length, decides.
    let dtab = format!("/svc/web => {FS}/a; /svc => {FS}/b");
    assert_shares(&dtab, &["a", "b"], &[("b", 1.0)]);
}

#[test]
fn a_negative_falls_back_to_the_rule_before() {
    let dtab = format!("/svc => {FS}/a; /svc => {FS}/b");
    assert_shares(&dtab, &["a"], &[("a", 1.0)]);
    assert_shares(
        &format!("/svc => {FS}/a; /svc/web => ~"),
        &["a"],
        &[("a", 1.0)],
    );
    assert_eq!(
        eval(&format!("/svc => {FS}/a; /svc => {FS}/b"), &[]),
        Ok(Delegation::Neg)
    );
    // A rule for another name does not match at all.
    assert_shares(
        &format!("/svc => {FS}/a; /svc/api => {FS}/b"),
        &["a", "b"],
        &[("a", 1.0)],
    );
    assert_eq!(eval("", &[]), Ok(Delegation::Neg));
}

#[test]
fn a_failure_does_not_fall_back() {
    assert_eq!(
        eval(&format!("/svc => {FS}/a; /svc/web => !"), &["a"]),
        Ok(Delegation::Fail)
    );
    assert_eq!(
        eval(&format!("/svc => ! | {FS}/a"), &["a"]),
        Ok(Delegation::Fail)
    );
    // Behind a negative, `!` is reached and fails.
    assert_eq!(
        eval(&format!("/svc => ~ | ! | {FS}/a"), &["a"]),
        Ok(Delegation::Fail)
    );
}

#[test]
fn a_star_matches_any_one_segment() {
    assert_shares(
        &format!("/svc => /k/v1; /k/*/web => {FS}/x"),
        &["x"],
        &[("x", 1.0)],
    );
    assert_shares(&format!("/* => {FS}/any"), &["any"], &[("any", 1.0)]);
    // `/svc/web/*` needs a third segment.
    assert_eq!(
        eval(&format!("/svc/web/* => {FS}/x"), &["x"]),
        Ok(Delegation::Neg)
    );
}

#[test]
fn the_residual_is_appended() {
    // `/svc/web` matches `/svc`, leaving `web` to append: the file `web`.
    assert_shares(&format!("/svc => {FS}"), &["web"], &[("web", 1.0)]);
    // Through two rules, the residual grows; the namer uses the segment after its own.
    assert_shares(
        &format!("/svc => /env/prod; /env => {FS}"),
        &["prod"],
        &[("prod", 1.0)],
    );
    assert_shares(
        &format!("/svc => /a/b; /a/b/web => {FS}/yes"),
        &["yes"],
        &[("yes", 1.0)],
    );
    // Nothing left for the file name: negative.
    assert_eq!(
        eval(&format!("/svc/web => {FS}"), &["web"]),
        Ok(Delegation::Neg)
    );
}

#[test]
fn alternatives_take_the_first_that_resolves() {
    let dtab = format!("/svc => {FS}/missing | {FS}/b | {FS}/c");
    assert_shares(&dtab, &["b", "c"], &[("b", 1.0)]);
    assert_shares(&dtab, &["c"], &[("c", 1.0)]);
    assert_eq!(eval(&dtab, &[]), Ok(Delegation::Neg));
    assert_shares("/svc => ~ | $", &[], &[("$", 1.0)]);
    // An existing destination stops the search even with no endpoints.
    assert_shares(&format!("/svc => $ | {FS}/b"), &["b"], &[("$", 1.0)]);
}

#[test]
fn unions_split_by_normalised_weights() {
    let dtab = format!("/svc => 3 * {FS}/a & 1 * {FS}/b");
    assert_shares(&dtab, &["a", "b"], &[("a", 0.75), ("b", 0.25)]);
    // A negative branch drops out; the others share everything.
    assert_shares(&dtab, &["b"], &[("b", 1.0)]);
    assert_eq!(eval(&dtab, &[]), Ok(Delegation::Neg));
    // Branches that all weigh 0 share equally; a 0 among others gets nothing.
    let zero = format!("/svc => 0 * {FS}/a & 0 * {FS}/b");
    assert_shares(&zero, &["a", "b"], &[("a", 0.5), ("b", 0.5)]);
    let some_zero = format!("/svc => 0 * {FS}/a & 2 * {FS}/b");
    assert_shares(&some_zero, &["a", "b"], &[("b", 1.0)]);
    // `$` keeps its share: those requests fail fast.
    assert_shares(
        &format!("/svc => 1 * {FS}/a & 1 * $"),
        &["a"],
        &[("a", 0.5), ("$", 0.5)],
    );
}

#[test]
fn nested_unions_multiply_weights() {
    let dtab = format!("/svc => 1 * {FS}/a & 1 * (1 * {FS}/b & 3 * {FS}/c)");
    assert_shares(
        &dtab,
        &["a", "b", "c"],
        &[("a", 0.5), ("b", 0.125), ("c", 0.375)],
    );
    // The same through a delegation instead of parentheses.
    let dtab = format!("/svc => 1 * {FS}/a & 3 * /x; /x => 1 * {FS}/b & 1 * {FS}/c");
    assert_shares(
        &dtab,
        &["a", "b", "c"],
        &[("a", 0.25), ("b", 0.375), ("c", 0.375)],
    );
    // A file reached by two branches gets both shares, once.
    let dtab = format!("/svc => 1 * {FS}/a & 1 * {FS}/a/v2 & 2 * {FS}/b");
    assert_shares(&dtab, &["a", "b"], &[("a", 0.5), ("b", 0.5)]);
}

#[test]
fn failures_in_unions() {
    // A failed branch drops out like a negative one, but a union of nothing else fails.
    assert_shares(
        &format!("/svc => 1 * ! & 1 * {FS}/a"),
        &["a"],
        &[("a", 1.0)],
    );
    assert_eq!(
        eval(&format!("/svc => 1 * ! & 1 * {FS}/a"), &[]),
        Ok(Delegation::Fail)
    );
    assert_eq!(eval("/svc => 1 * ~ & 1 * ~", &[]), Ok(Delegation::Neg));
}

#[test]
fn explicit_failure_and_empty() {
    assert_eq!(eval("/svc => !", &[]), Ok(Delegation::Fail));
    assert_shares("/svc => $", &[], &[("$", 1.0)]);
    assert_eq!(eval("/svc => ~", &[]), Ok(Delegation::Neg));
}

/// `/svc => /p1; /p1 => /p2; …; /p{hops-1} => FS/a`: `hops` delegations.
fn chain(hops: usize) -> String {
    let mut rules = vec!["/svc => /p1".to_owned()];
    for i in 1..hops - 1 {
        rules.push(format!("/p{i} => /p{}", i + 1));
    }
    rules.push(format!("/p{} => {FS}/a", hops - 1));
    rules.join("; ")
}

#[test]
fn delegation_depth_is_bounded() {
    assert_shares(&chain(MAX_DEPTH), &["a"], &[("a", 1.0)]);
    assert_eq!(
        eval(&chain(MAX_DEPTH + 1), &["a"]),
        Err(DelegateError::TooDeep)
    );
}

#[test]
fn loops_end_with_an_error() {
    assert_eq!(eval("/svc => /svc", &[]), Err(DelegateError::TooDeep));
    // Even behind a rule that would resolve: the bound is an error, not a negative.
    assert_eq!(
        eval(&format!("/svc => {FS}/a; /svc => /svc"), &["a"]),
        Err(DelegateError::TooDeep)
    );
    // A path that grows on every step.
    assert!(eval("/svc => /svc/more/and/more", &[]).is_err());
    // Doubling on every step: 2^100 leaves, stopped by a bound at once.
    let started = std::time::Instant::now();
    assert!(eval("/svc => /svc & /svc", &[]).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn wide_trees_are_bounded() {
    // Five levels of ten-way unions: 100,000 leaves, 5 deep.
    let ten = |to: &str| [to; 10].join(" & ");
    let mut rules = vec![format!("/svc => {}", ten("/l1"))];
    for level in 1..5 {
        rules.push(format!("/l{level} => {}", ten(&format!("/l{}", level + 1))));
    }
    rules.push(format!("/l5 => {FS}/a"));
    assert_eq!(
        eval(&rules.join("; "), &["a"]),
        Err(DelegateError::TooLarge)
    );
    // Three levels, 1,000 leaves, fit.
    let three = format!(
        "/svc => {}; /l1 => {}; /l2 => {}; /l3 => {FS}/a",
        ten("/l1"),
        ten("/l2"),
        ten("/l3")
    );
    assert_shares(&three, &["a"], &[("a", 1.0)]);
}

#[test]
fn file_names_stay_in_the_directory() {
    let mut asked = Vec::new();
    let dtab = Dtab::parse(&format!(
        "/svc => {FS}/\\x2e\\x2e | {FS}/.hidden | {FS}/a\\x2fb | {FS}/\\xff | {FS}/ok"
    ))
    .unwrap();
    let path = vec![b"svc".to_vec(), b"web".to_vec()];
    let result = delegate(&dtab, &path, &mut |name| {
        asked.push(name.to_owned());
        true
    });
    assert_eq!(asked, ["ok"]);
    assert!(matches!(result, Ok(Delegation::Bound(s)) if s[0].target == Target::File("ok".into())));
}

#[test]
fn deeply_nested_trees_cost_no_call_stack() {
    let depth = crate::dtab::MAX_DEPTH;
    let dtab = format!("/svc => {}{FS}/a{}", "(".repeat(depth), ")".repeat(depth));
    assert_shares(&dtab, &["a"], &[("a", 1.0)]);
}

use super::*;

/// A toy condition tree: leaves are booleans.
enum Tree {
    Leaf(bool),
    All(Vec<Tree>),
    Any(Vec<Tree>),
    Not(Box<Tree>),
}

fn eval(tree: &Tree) -> Result<bool, MatcherError> {
    let m = Matcher::build(tree, |t| {
        Ok(match t {
            Tree::Leaf(b) => Node::Leaf(*b),
            Tree::All(c) => Node::All(c),
            Tree::Any(c) => Node::Any(c),
            Tree::Not(c) => Node::Not(c),
        })
    })?;
    Ok(m.eval(|b| *b))
}

#[test]
fn postfix_programs_evaluate_like_the_tree() {
    use Tree::*;
    assert_eq!(eval(&All(vec![])), Ok(true));
    assert_eq!(eval(&Any(vec![])), Ok(false));
    assert_eq!(eval(&Not(Box::new(Leaf(false)))), Ok(true));
    let t = All(vec![
        Leaf(true),
        Any(vec![Leaf(false), Not(Box::new(Leaf(false)))]),
        Not(Box::new(All(vec![Leaf(true), Leaf(false)]))),
    ]);
    assert_eq!(eval(&t), Ok(true));
    let t = Any(vec![All(vec![Leaf(true), Leaf(false)]), Leaf(false)]);
    assert_eq!(eval(&t), Ok(false));
    // Siblings keep their own operands: the inner any must not see the outer leaves.
    let t = All(vec![Leaf(false), Any(vec![Leaf(true)])]);
    assert_eq!(eval(&t), Ok(false));
}

#[test]
fn large_trees_are_refused() {
    let wide = Tree::Any((0..MAX_MATCH_NODES).map(|_| Tree::Leaf(true)).collect());
    assert_eq!(eval(&wide), Err(MatcherError::TooLarge));
    let ok = Tree::Any((0..MAX_MATCH_NODES - 1).map(|_| Tree::Leaf(true)).collect());
    assert_eq!(eval(&ok), Ok(true));
}

#[test]
fn routes_without_profile_classes_fail_on_5xx() {
    let route = Route {
        name: "r".into(),
        labels: Vec::new(),
        condition: RequestMatch(Matcher::leaf(RequestLeaf::Method(http::Method::GET))),
        response_classes: Vec::new(),
        is_retryable: false,
        timeout: None,
    };
    assert!(route.is_failure(http::StatusCode::BAD_GATEWAY));
    assert!(!route.is_failure(http::StatusCode::NOT_FOUND));
    let profile = Profile {
        routes: vec![route],
        ..Profile::default()
    };
    assert!(profile.route_for(&http::Method::GET, "/").is_some());
    assert!(profile.route_for(&http::Method::POST, "/").is_none());
}

//! The dtab parser: no input panics or takes long; what parses prints back to the same value;
//! generated dtabs, printed in the canonical form or with any whitespace and comments between
//! tokens, parse to what was generated; nesting however deep is an error, not a crash.
//!
//! A few hundred inputs per target in a normal `cargo test`; `MESH_FUZZ_CASES=N` runs N (see
//! `crate::fuzz_runner` and `cargo xtask fuzz`).

use proptest::prelude::*;

use super::{Dentry, Dtab, MAX_DEPTH, NameTree, Path, Prefix, PrefixElem, Weighted};
use crate::fuzz_runner::fuzz;

/// Parses `input`; if it parses, its printed form parses to the same value and prints the same.
fn check(input: &str) -> Result<(), TestCaseError> {
    let Ok(dtab) = Dtab::parse(input) else {
        return Ok(());
    };
    let shown = dtab.to_string();
    let again = Dtab::parse(&shown);
    prop_assert_eq!(
        again.as_ref(),
        Ok(&dtab),
        "{:?} printed as {:?}",
        input,
        shown
    );
    if let Ok(again) = again {
        prop_assert_eq!(again.to_string(), shown);
    }
    Ok(())
}

#[test]
fn arbitrary_strings() {
    fuzz("dtab: arbitrary strings", 512, any::<String>(), |s| {
        check(&s)
    });
}

#[test]
fn arbitrary_bytes() {
    fuzz(
        "dtab: arbitrary bytes",
        512,
        prop::collection::vec(any::<u8>(), 0..300),
        |bytes| check(&String::from_utf8_lossy(&bytes)),
    );
}

/// Pieces of the grammar, right and wrong, so that many inputs get deep into the parser.
const TOKENS: &[&str] = &[
    "/",
    "/",
    "/",
    "a",
    "svc",
    "#",
    "$",
    "io.l5d.fs",
    "*",
    "=>",
    "=",
    ">",
    ";",
    "|",
    "&",
    "(",
    ")",
    "(",
    ")",
    "~",
    "!",
    "2",
    "0.5",
    ".",
    "1.",
    " * ",
    "*",
    " ",
    " ",
    "\n",
    "\t",
    "# c\n",
    r"\x2a",
    r"\x",
    "f",
    "g",
    "é",
    "-",
    "9999999999",
    "\0",
];

/// Tokens alone, or after a rule's start so that more of them land in a tree.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = prop::collection::vec(prop::sample::select(TOKENS), 0..60);
    (any::<bool>(), tokens).prop_map(|(in_tree, tokens)| {
        let start = if in_tree { "/x => " } else { "" };
        format!("{start}{}", tokens.concat())
    })
}

#[test]
fn token_soups() {
    fuzz("dtab: token soup", 1024, token_soup(), |s| check(&s));
}

fn label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[a-z0-9._#$%:-]{1,8}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(label(), 0..4).prop_map(Path)
}

fn prefix() -> impl Strategy<Value = Prefix> {
    let elem = prop_oneof![
        1 => Just(PrefixElem::Any),
        3 => label().prop_map(PrefixElem::Label),
    ];
    prop::collection::vec(elem, 0..4).prop_map(Prefix)
}

/// Finite, not negative, from zero and subnormals to the largest `f64`.
fn weight() -> impl Strategy<Value = f64> {
    use prop::num::f64::{NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        2 => (0u32..100).prop_map(f64::from),
        1 => POSITIVE | NORMAL | SUBNORMAL | ZERO,
    ]
}

/// Trees the parser can produce: alternations and unions have at least two branches.
fn tree() -> impl Strategy<Value = NameTree> {
    let simple = prop_oneof![
        4 => path().prop_map(NameTree::Leaf),
        1 => Just(NameTree::Neg),
        1 => Just(NameTree::Fail),
        1 => Just(NameTree::Empty),
    ];
    simple.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(NameTree::Alt),
            prop::collection::vec(
                (weight(), inner).prop_map(|(weight, tree)| Weighted { weight, tree }),
                2..4
            )
            .prop_map(NameTree::Union),
        ]
    })
}

fn dtab() -> impl Strategy<Value = Dtab> {
    let dentry = (prefix(), tree()).prop_map(|(prefix, tree)| Dentry { prefix, tree });
    prop::collection::vec(dentry, 0..4).prop_map(Dtab)
}

/// What may stand wherever the canonical form has a space.
const SPACES: &[&str] = &["", " ", "  ", "\n", "\t", "\r\n", " # a comment ; => |\n"];

#[test]
fn generated_dtabs_read_back() {
    let spaces = prop::collection::vec(prop::sample::select(SPACES), 64);
    fuzz(
        "dtab: generated",
        512,
        (dtab(), spaces, any::<bool>()),
        |(dtab, spaces, trailing)| {
            let shown = dtab.to_string();
            prop_assert_eq!(Dtab::parse(&shown), Ok(dtab.clone()), "{}", shown);
            // Every space in the canonical form stands between tokens (labels escape theirs),
            // where the grammar allows any whitespace and comments, or none.
            let mut respaced = String::new();
            for (i, piece) in shown.split(' ').enumerate() {
                if i > 0 {
                    respaced.push_str(spaces[i % spaces.len()]);
                }
                respaced.push_str(piece);
            }
            if trailing && !dtab.0.is_empty() {
                respaced.push_str(";\n");
            }
            prop_assert_eq!(Dtab::parse(&respaced), Ok(dtab), "{:?}", respaced);
            Ok(())
        },
    );
}

/// One edit of a printed dtab: at a fraction of its length, cut some bytes and put a token.
type Edit = (f64, usize, &'static str);

fn mutate(shown: &str, edits: &[Edit]) -> String {
    let mut bytes = shown.as_bytes().to_vec();
    for &(at, cut, token) in edits {
        // On bytes: a cut through a multi-byte token becomes U+FFFD below, one more odd input.
        let at = ((bytes.len() as f64 * at) as usize).min(bytes.len());
        let end = (at + cut).min(bytes.len());
        bytes.splice(at..end, token.bytes());
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn generated_dtabs_mutated() {
    let edit = (0.0..1.0, 0usize..4, prop::sample::select(TOKENS));
    let edits = prop::collection::vec(edit, 1..4);
    fuzz(
        "dtab: generated, mutated",
        512,
        (dtab(), edits),
        |(dtab, edits)| check(&mutate(&dtab.to_string(), &edits)),
    );
}

#[test]
fn deep_nesting_is_an_error() {
    let deep = (0usize..4 * MAX_DEPTH, 0usize..4 * MAX_DEPTH, any::<bool>());
    fuzz(
        "dtab: deep nesting",
        256,
        deep,
        |(open, close, weighted)| {
            let opener = if weighted { "2 * (" } else { "(" };
            let input = format!("/a => {}/b{}", opener.repeat(open), ")".repeat(close));
            let parsed = Dtab::parse(&input);
            if open == close && open <= MAX_DEPTH {
                prop_assert!(parsed.is_ok(), "{:?}", parsed);
            } else {
                prop_assert!(parsed.is_err());
            }
            if open > MAX_DEPTH {
                let e = parsed.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(e.ends_with("parentheses nest deeper than 64"), "{}", e);
            }
            check(&input)
        },
    );
}

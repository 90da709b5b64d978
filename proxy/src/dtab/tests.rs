use super::parse::Found;
use super::*;

fn parse(s: &str) -> Dtab {
    match Dtab::parse(s) {
        Ok(dtab) => dtab,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn err(s: &str) -> String {
    match Dtab::parse(s) {
        Ok(dtab) => panic!("{s:?} should not parse, got {dtab:?}"),
        Err(e) => e.to_string(),
    }
}

/// The tree of a one-entry dtab `/x => <tree>`.
fn tree(s: &str) -> NameTree {
    let dtab = parse(&format!("/x => {s}"));
    assert_eq!(dtab.0.len(), 1);
    dtab.0[0].tree.clone()
}

fn path(s: &str) -> Path {
    let segments = s
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect();
    Path(segments)
}

fn leaf(s: &str) -> NameTree {
    NameTree::Leaf(path(s))
}

fn w(weight: f64, tree: NameTree) -> Weighted {
    Weighted { weight, tree }
}

fn label(s: &str) -> PrefixElem {
    PrefixElem::Label(s.as_bytes().to_vec())
}

/// Display parses back to the same value, and prints the same again.
fn round_trip(dtab: &Dtab) {
    let shown = dtab.to_string();
    let again = Dtab::parse(&shown).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    assert_eq!(&again, dtab, "{shown}");
    assert_eq!(again.to_string(), shown);
}

#[test]
fn the_examples() {
    let dtab = parse(
        "/svc => /#/io.l5d.fs ; /svc/web => 9 * /#/io.l5d.fs/web-v1 & 1 * /#/io.l5d.fs/web-v2",
    );
    assert_eq!(
        dtab,
        Dtab(vec![
            Dentry {
                prefix: Prefix(vec![label("svc")]),
                tree: leaf("/#/io.l5d.fs"),
            },
            Dentry {
                prefix: Prefix(vec![label("svc"), label("web")]),
                tree: NameTree::Union(vec![
                    w(9.0, leaf("/#/io.l5d.fs/web-v1")),
                    w(1.0, leaf("/#/io.l5d.fs/web-v2")),
                ]),
            },
        ])
    );
    assert_eq!(
        dtab.to_string(),
        "/svc => /#/io.l5d.fs; /svc/web => 9 * /#/io.l5d.fs/web-v1 & 1 * /#/io.l5d.fs/web-v2"
    );
    round_trip(&dtab);
    // Linkerd's docs: ordered dentries, and an alternation across ice cream stores.
    let dtab = parse(
        "/smitten => /USA/CA/SF/Octavia/432;\n/iceCreamStore => /smitten;\n\
         /iceCreamStore => /humphrys | /smitten;\n/$/inet/127.1/8080 => /x\n",
    );
    assert_eq!(dtab.0.len(), 4);
    assert_eq!(
        dtab.0[2].tree,
        NameTree::Alt(vec![leaf("/humphrys"), leaf("/smitten")])
    );
    round_trip(&dtab);
}

#[test]
fn every_tree_form() {
    assert_eq!(tree("/a/b"), leaf("/a/b"));
    assert_eq!(tree("/"), NameTree::Leaf(Path::default()));
    assert_eq!(tree("~"), NameTree::Neg);
    assert_eq!(tree("!"), NameTree::Fail);
    assert_eq!(tree("$"), NameTree::Empty);
    assert_eq!(
        tree("/a | ~ | ! | $"),
        NameTree::Alt(vec![
            leaf("/a"),
            NameTree::Neg,
            NameTree::Fail,
            NameTree::Empty
        ])
    );
    assert_eq!(
        tree("/a & /b & $"),
        NameTree::Union(vec![
            w(1.0, leaf("/a")),
            w(1.0, leaf("/b")),
            w(1.0, NameTree::Empty)
        ])
    );
}

#[test]
fn or_binds_looser_than_and() {
    let expected = NameTree::Alt(vec![
        NameTree::Union(vec![w(1.0, leaf("/a")), w(1.0, leaf("/b"))]),
        leaf("/c"),
    ]);
    assert_eq!(tree("/a & /b | /c"), expected);
    assert_eq!(tree("(/a & /b) | /c"), expected);
    assert_eq!(
        tree("/a | /b & /c"),
        NameTree::Alt(vec![
            leaf("/a"),
            NameTree::Union(vec![w(1.0, leaf("/b")), w(1.0, leaf("/c"))]),
        ])
    );
}

#[test]
fn parentheses_group() {
    let grouped = NameTree::Union(vec![
        w(1.0, NameTree::Alt(vec![leaf("/a"), leaf("/b")])),
        w(1.0, leaf("/c")),
    ]);
    assert_eq!(tree("(/a | /b) & /c"), grouped);
    assert_eq!(tree("( ( /a|/b ) ) & /c"), grouped);
    assert_eq!(tree("(/a)"), leaf("/a"));
    // An inner alternation stays a tree of its own, and prints with its parentheses.
    let nested = tree("(/a | /b) | /c");
    assert_eq!(
        nested,
        NameTree::Alt(vec![
            NameTree::Alt(vec![leaf("/a"), leaf("/b")]),
            leaf("/c")
        ])
    );
    assert_eq!(nested.to_string(), "(/a | /b) | /c");
    assert_eq!(
        tree("2 * (3 * /a & /b) & /c").to_string(),
        "2 * (3 * /a & 1 * /b) & 1 * /c"
    );
}

#[test]
fn weights() {
    let weights = |s: &str| match tree(s) {
        NameTree::Union(ws) => ws.iter().map(|w| w.weight).collect::<Vec<_>>(),
        other => panic!("{s}: not a union: {other:?}"),
    };
    assert_eq!(weights("/a & /b"), [1.0, 1.0]);
    assert_eq!(weights("0.5 * /a & 2. * /b & .25*/c"), [0.5, 2.0, 0.25]);
    assert_eq!(weights("0 * /a & 007 * /b"), [0.0, 7.0]);
    assert_eq!(weights("1\n*\n/a & 2 # two\n * /b"), [1.0, 2.0]);
    // One weighted branch is its tree, as in Finagle.
    assert_eq!(tree("3 * /a"), leaf("/a"));
    assert_eq!(
        tree("3 * /a | /b"),
        NameTree::Alt(vec![leaf("/a"), leaf("/b")])
    );

    assert_eq!(
        err("/x => -1 * /a"),
        "at 1:7: expected a path, '!', '~', '$', '(' or a weight, found '-'"
    );
    assert_eq!(
        err("/x => NaN * /a"),
        "at 1:7: expected a path, '!', '~', '$', '(' or a weight, found 'N'"
    );
    assert_eq!(
        err("/x => 1e999 * /a"),
        "at 1:8: expected '*' after a weight, found 'e'"
    );
    assert_eq!(
        err("/x => . * /a"),
        "at 1:7: a weight is digits with at most one '.'"
    );
    assert_eq!(
        err("/x => 1.2.3 * /a"),
        "at 1:7: a weight is digits with at most one '.'"
    );
    let huge = format!("/x => {} * /a & /b", "9".repeat(400));
    assert_eq!(err(&huge), "at 1:7: the weight is too large");
    assert_eq!(
        err("/x => 2 /a"),
        "at 1:9: expected '*' after a weight, found '/'"
    );
}

#[test]
fn escapes() {
    assert_eq!(
        tree(r"/a\x2fb/\x00\xFF"),
        NameTree::Leaf(Path(vec![b"a/b".to_vec(), vec![0x00, 0xff]]))
    );
    // Printed escaped again, in lower case; showable bytes are printed as they are.
    assert_eq!(tree(r"/\x41\x2a").to_string(), r"/A\x2a");
    assert_eq!(
        err(r"/x => /a\y"),
        r"at 1:10: expected 'x' after '\', found 'y'"
    );
    assert_eq!(
        err(r"/x => /a\x4"),
        "at 1:12: expected a hex digit, found end of input"
    );
    assert_eq!(
        err(r"/x => /a\xg0"),
        "at 1:11: expected a hex digit, found 'g'"
    );
}

#[test]
fn wildcards() {
    let dtab = parse("/svc/*/web => /a; /* => /b; / => /c");
    assert_eq!(
        dtab.0[0].prefix,
        Prefix(vec![label("svc"), PrefixElem::Any, label("web")])
    );
    assert_eq!(dtab.0[1].prefix, Prefix(vec![PrefixElem::Any]));
    assert_eq!(dtab.0[2].prefix, Prefix::default());
    round_trip(&dtab);
    // `*` is a whole element, and only in a prefix; a literal star is escaped.
    assert_eq!(err("/a* => /b"), "at 1:3: expected '=>', found '*'");
    assert_eq!(err("/*a => /b"), "at 1:3: expected '=>', found 'a'");
    assert_eq!(
        err("/a => /*"),
        "at 1:8: expected ';' or end of input, found '*'"
    );
    let literal = parse(r"/\x2a => /b");
    assert_eq!(literal.0[0].prefix, Prefix(vec![label("*")]));
    assert_eq!(literal.to_string(), r"/\x2a => /b");
}

#[test]
fn whitespace_comments_and_separators() {
    let spaced =
        parse("# routes\n  /svc=>/a ;# first\n\t/svc/web   =>  ( /b |\r\n /c ) ;\n# done\n");
    assert_eq!(spaced.0.len(), 2);
    assert_eq!(spaced.to_string(), "/svc => /a; /svc/web => /b | /c");
    assert_eq!(parse(""), Dtab::default());
    assert_eq!(parse("  \n # only a comment"), Dtab::default());
    assert_eq!(parse("/a=>/b;").0.len(), 1);
    // `#` inside a label is a character, not a comment.
    assert_eq!(tree("/a#b # c"), leaf("/a#b"));
    // `;` separates entries; it does not stand alone.
    assert_eq!(err(";"), "at 1:1: expected '/', found ';'");
    assert_eq!(err("/a=>/b;;"), "at 1:8: expected '/', found ';'");
    assert_eq!(
        err("/a => /b\u{a0}"),
        "at 1:9: expected ';' or end of input, found '\\u{a0}'"
    );
}

#[test]
fn errors_and_positions() {
    let cases = [
        ("/a", "at 1:3: expected '=>', found end of input"),
        ("/a = /b", "at 1:4: expected '=>', found '='"),
        ("a => /b", "at 1:1: expected '/', found 'a'"),
        ("/a/ => /b", "at 1:4: expected a label or '*', found ' '"),
        ("/a//b => /c", "at 1:4: expected a label or '*', found '/'"),
        (
            "/a =>",
            "at 1:6: expected a path, '!', '~', '$', '(' or a weight, found end of input",
        ),
        ("/a => /b/", "at 1:10: expected a label, found end of input"),
        (
            "/a => /b /c",
            "at 1:10: expected ';' or end of input, found '/'",
        ),
        (
            "/a => /b |",
            "at 1:11: expected a path, '!', '~', '$', '(' or a weight, found end of input",
        ),
        (
            "/a => /b & | /c",
            "at 1:12: expected a path, '!', '~', '$', '(' or a weight, found '|'",
        ),
        (
            "/a => (/b",
            "at 1:10: expected '&', '|' or ')', found end of input",
        ),
        (
            "/a => (/b ;",
            "at 1:11: expected '&', '|' or ')', found ';'",
        ),
        (
            "/a => /b)",
            "at 1:9: expected ';' or end of input, found ')'",
        ),
        (
            "/a => ()",
            "at 1:8: expected a path, '!', '~', '$', '(' or a weight, found ')'",
        ),
        (
            "/a => /b;\n/c => /d\n  /e",
            "at 3:3: expected ';' or end of input, found '/'",
        ),
        ("/é => /b", "at 1:2: expected '=>', found 'é'"),
        ("/a => /b; /é", "at 1:12: expected '=>', found 'é'"),
        ("/é/b", "at 1:2: expected '=>', found 'é'"),
        (
            "/a => é;\n/x",
            "at 1:7: expected a path, '!', '~', '$', '(' or a weight, found 'é'",
        ),
        ("/a => /b; é é", "at 1:11: expected '/', found 'é'"),
        ("/ab=>/b;ééé\n", "at 1:9: expected '/', found 'é'"),
        ("é\né/a", "at 1:1: expected '/', found 'é'"),
        ("\n\n  éé/a", "at 3:3: expected '/', found 'é'"),
    ];
    for (input, expected) in cases {
        assert_eq!(err(input), expected, "{input:?}");
    }
    // Columns count characters, not bytes.
    assert_eq!(err("# é\n/é"), "at 2:2: expected '=>', found 'é'");
    assert_eq!(
        err("/a => /b # é\n /c"),
        "at 2:2: expected ';' or end of input, found '/'"
    );
    let e = Dtab::parse("/a").err();
    assert_eq!(
        e.map(|e| e.kind),
        Some(DtabErrorKind::Expected {
            expected: "'=>'",
            found: Found::End
        })
    );
}

#[test]
fn nesting_is_capped() {
    let nested = |n: usize| format!("/a => {}/b{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(tree(&nested(MAX_DEPTH)[6..]), leaf("/b"));
    assert_eq!(
        err(&nested(MAX_DEPTH + 1)),
        format!(
            "at 1:{}: parentheses nest deeper than {MAX_DEPTH}",
            7 + MAX_DEPTH
        )
    );
    // Deep input of the largest size allowed is an error, not a stack overflow.
    let deep = "(".repeat(MAX_DTAB_LEN - 10);
    assert!(err(&format!("/a => {deep}")).ends_with("parentheses nest deeper than 64"));
    // Weighted groups nest too.
    let weighted = format!(
        "/a => {}/b{}",
        "2 * (".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(err(&weighted).ends_with("parentheses nest deeper than 64"));
}

#[test]
fn size_is_capped() {
    let entry = "/a => /b;\n";
    let fits = entry.repeat(MAX_DTAB_LEN / entry.len());
    assert_eq!(parse(&fits).0.len(), MAX_DTAB_LEN / entry.len());
    let mut over = " ".repeat(MAX_DTAB_LEN);
    over.push_str("/a => /b");
    assert_eq!(
        err(&over),
        format!(
            "at 1:{}: the dtab is {} bytes; at most {MAX_DTAB_LEN} are allowed",
            MAX_DTAB_LEN + 1,
            MAX_DTAB_LEN + 8
        )
    );
}

#[test]
fn display_round_trips() {
    for input in [
        "",
        "/ => /",
        "/a => ~ | ! | $",
        "/a => (/b | /c) | /d",
        "/a => 0.5 * (/b | 2 * /c & /d) & 1 * /e",
        "/a => 1 * (1 * /b & 1 * /c) & 1 * /d",
        r"/\x00/* => /\xff\x2f | (((/x)))",
        "/a => 0.1 * /b & 0.000001 * /c & 123456789012345678901234567890 * /d",
    ] {
        round_trip(&parse(input));
    }
    // Values built by hand print too, the unparseable shapes as what they evaluate to.
    assert_eq!(NameTree::Alt(vec![]).to_string(), "~");
    assert_eq!(NameTree::Union(vec![]).to_string(), "~");
    assert_eq!(
        Path::new(vec![b"a b".to_vec()]).map(|p| p.to_string()),
        Some(r"/a\x20b".into())
    );
    assert_eq!(Path::new(vec![vec![]]), None);
    assert_eq!(Prefix::new(vec![PrefixElem::Label(vec![])]), None);
    assert_eq!(
        Prefix::new(vec![PrefixElem::Any]).map(|p| p.to_string()),
        Some("/*".into())
    );
}

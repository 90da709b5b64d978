//! The quick parser against saphyr-parser: whenever the quick one takes a chunk, both must build
//! the same tree. Most tests here feed it text meant to trip it up.

use proptest::prelude::*;

use super::*;
use crate::yaml::tree::assert_same_as_events;

/// Parses `text` both ways; panics if the quick parser took it and the two disagree. Returns
/// whether the quick parser took it.
fn agrees(text: &str) -> bool {
    let Some(quick) = parse(text, 7) else {
        return false;
    };
    assert_same_as_events(text, 7, 1, &quick);
    true
}

#[test]
fn takes_the_yaml_manifests_are_written_in() {
    let taken = [
        "a: b\n",
        "---\na: b\n",
        "--- # first\n# note\na: b\n",
        "a:\n",
        "a:   \nb:  # nothing\nc: d\n",
        "a:\n  b:\n    c: d\n  e: f\n",
        "a:\n- b\n- c\nd: e\n",
        "a:\n  - b\n  -\n  - # c\n  - d\n",
        "a:\n-\n  - b\n",
        "a:\n-\n  b: c\n",
        "a:\n- b: c\n  d: e\n- f: g\n",
        "a:\n-   b: c\n    d: e\n",
        "k: 'it''s'\nl: \"x y\"\n\"m\": 'n'\n'o': p\n",
        "a: b # c\nd: e#f\ng: h  \n",
        "# ñ\naé: xé # ü\nb: 'é'\nc: \"日本\"\nd: |\n  ü\ne: [\"ß\"]\n",
        "a:\n- b # c\n- 'd' # e\n- [f]  # g\n",
        "image: registry:5000/app:1.0\nurl: http://x/y?z=1#frag\n",
        "a: [\"--port\", \"8080\"]\nb: []\nc: {}\nd: { x: 1, y: \"2\" }\ne: [ a , b ]\n",
        "a: |\n  x\n\n  y\nb: c\n",
        "a: |-\n    x\n     y\n\n\nb: c\n",
        "a: |+\n  x\n\n# note\nb: c\n",
        "a:\n- |\n  x\n- y\n",
        "a:\n  - |\n    x\n  - y\n",
        "a: |\n  # not a comment\n  x\n",
        "a: |\n  x\n # c\nb: d\n",
        "a: -1\nb: --flag\nc: ~\nd: null\n",
        "a: b\n  # a deeper comment\nc: d\n",
        "  a: b\n  c: d\n",
        "a: x\n# trailing\n\n",
    ];
    for text in taken {
        assert!(agrees(text), "gave up on {text:?}");
    }
}

#[test]
fn leaves_the_rest_to_saphyr() {
    let left = [
        "",
        "# only a comment\n",
        "---\n",
        "- a\n",
        "a\n",
        "a: b\n  c\n",
        "a: &x b\nc: *x\n",
        "a: !!str b\n",
        "a: \"b\\n\"\n",
        "a: \"b\n  c\"\n",
        "a: 'b\n  c'\n",
        "a: [b,\n  c]\n",
        "a: [b, [c]]\n",
        "a: [b,]\n",
        "a: >\n  b\n",
        "a: |2\n  b\n",
        "a: |\n\n  b\n",
        "a: |\n  b\n   \n",
        "a: |\n  b",
        "a: b",
        "a: 'q' # c",
        "a:\tb\n",
        "a: b\r\n",
        "é: b\n",
        "a: é\n",
        "a: [é]\n",
        "a: \u{feff}b\n",
        "a: b\u{85}c\n",
        "\u{feff}a: b\n",
        "a : b\n",
        "? a\n: b\n",
        "a: b: c\n",
        "a: b:\n",
        "a:\n- - b\n",
        "a:\n  - b\n  c: d\n",
        "a:\n  b: c\n d: e\n",
        "a: b\n...\n",
        "%YAML 1.2\n---\na: b\n",
        "a: b\n---\nc: d\n",
        "a: \"b\"c\n",
        "a: 'b'#c\n",
        "<<: *x\n",
        "a: *x\n",
        "a: @x\n",
        "a: b\n- c\n",
        "a: [b]c\n",
        "a: {b}\n",
        "a: {b: }\n",
    ];
    for text in left {
        assert!(!agrees(text), "took {text:?}");
    }
}

#[test]
fn leaves_deep_nesting_to_saphyr_rather_than_recursing() {
    let shallow: String = (0..50).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    assert!(agrees(&format!("{shallow}{}b: c\n", " ".repeat(50))));
    // Deep enough to overflow a thread's stack if every level recursed.
    let deep: String = (0..20_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    assert!(parse(&deep, 0).is_none());
}

#[test]
fn gives_the_same_tree_as_saphyr_on_every_shipped_manifest() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    let (mut chunks, mut taken) = (0, 0);
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for chunk in crate::yaml::split(&text) {
            chunks += 1;
            taken += usize::from(agrees(&text[chunk.range]));
        }
    }
    assert!(files.len() > 20, "found only {} manifests", files.len());
    // Most shipped manifests are plain block YAML; if the quick parser stops taking them, it has
    // grown too timid to matter.
    assert!(taken * 2 > chunks, "took {taken} of {chunks} chunks");
}

/// A line of a manifest, put together from pieces chosen to sit near the edges of what the quick
/// parser takes.
fn line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        "[a-z][a-z0-9./-]{0,5}",
        Just("\"k\"".to_owned()),
        Just("'k'".to_owned()),
        Just("k k".to_owned()),
        Just("k ".to_owned()),
        Just("\"k\" ".to_owned()),
        Just("-k".to_owned()),
    ];
    let value = prop::sample::select(vec![
        "",
        "x",
        "x y",
        "x#y",
        "x #y",
        "x: y",
        "x:y",
        "x:",
        "'q'",
        "'it''s'",
        "'open",
        "\"d\"",
        "\"e\\n\"",
        "\"open",
        "[]",
        "{}",
        "[a, b]",
        "[a,b]",
        "[ a ]",
        "[a, b,]",
        "[a",
        "[a, [b]]",
        "{a: 1}",
        "{a: 1, b: \"2\"}",
        "{a:1}",
        "{a}",
        "|",
        "|-",
        "|+",
        "|2",
        ">",
        "&x a",
        "*x",
        "!t a",
        "~",
        "-1",
        "--x",
        "- a",
        "-",
        "? a",
        "%x",
        "@x",
        "`x",
        "# c",
        "x # c",
        "'q' # c",
        "'q'#c",
        "[a] x",
        "x  ",
        "'q'  ",
        "[a]  ",
        "[a]  # c",
        "[ \"a\" , 'b' ]",
        "{ 'a' : b }",
        "\t",
        "é",
        "xé",
        "x ’y # ñ",
        "'日本'",
        "\u{feff}",
        "x\u{2028}y",
    ]);
    let body = prop_oneof![
        4 => (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k}: {v}")),
        2 => key.clone().prop_map(|k| format!("{k}:")),
        2 => value.clone().prop_map(|v| format!("- {v}")),
        2 => (key, value.clone()).prop_map(|(k, v)| format!("- {k}: {v}")),
        1 => Just("-".to_owned()),
        1 => Just("- -".to_owned()),
        1 => Just("# comment".to_owned()),
        1 => Just(String::new()),
        1 => value.prop_map(str::to_owned),
        1 => Just("...".to_owned()),
        1 => Just("---".to_owned()),
    ];
    let indent = prop_oneof![4 => (0..4usize).prop_map(|i| i * 2), 1 => 0..8usize];
    (indent, body).prop_map(|(indent, body)| format!("{}{body}", " ".repeat(indent)))
}

/// A document tree, to lay out in the many ways block YAML allows.
#[derive(Debug, Clone)]
enum Tree {
    Leaf(&'static str),
    /// A literal block scalar: its header and its lines, each with extra indentation (or blank,
    /// with some spaces, when the text is empty).
    Literal(&'static str, Vec<(usize, &'static str)>),
    Map(Vec<(&'static str, Tree)>),
    Seq(Vec<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop::sample::select(vec![
        "",
        "x",
        "x y",
        "x#y",
        "x:y",
        "http://h/p?q#f",
        "'q'",
        "'it''s'",
        "\"d\"",
        "\"a b\"  ",
        "'q' # c",
        "[]",
        "{}",
        "[a, b]",
        "[ \"a\" , 'b' ]",
        "{a: 1}",
        "{ 'a' : b }",
        "[a]  # c",
        "~",
        "-1",
        "--x",
        "x # c",
        "x  ",
        "# c",
        "xé",
        "x ’y # ñ",
        "'日本'",
        "[\"ß\"]",
    ])
    .prop_map(Tree::Leaf);
    let literal = (
        prop::sample::select(vec!["|", "|-", "|+", "|  # c", "|-  "]),
        prop::collection::vec(
            (
                0..3usize,
                prop::sample::select(vec!["a", "b c", "# d", "", "e: f", "- g", "ü"]),
            ),
            1..5,
        ),
    )
        .prop_map(|(header, lines)| Tree::Literal(header, lines));
    let key = prop::sample::select(vec!["a", "b-c", "d.e/f", "'g'", "\"h\"", "i j", "9", "kö"]);
    prop_oneof![4 => leaf, 1 => literal].prop_recursive(4, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec((key.clone(), inner.clone()), 1..4).prop_map(Tree::Map),
            prop::collection::vec(inner, 1..4).prop_map(Tree::Seq),
        ]
    })
}

/// Lays out `tree` as the value of a block collection in column `col`, choosing each layout
/// decision from `style`.
struct Layout<'s> {
    style: std::iter::Cycle<std::slice::Iter<'s, u8>>,
    out: String,
}

impl Layout<'_> {
    fn pick(&mut self, n: u8) -> u8 {
        self.style.next().copied().unwrap_or(0) % n
    }

    /// Maybe a comment or blank line before an entry.
    fn decorate(&mut self, col: usize) {
        match self.pick(6) {
            0 => {
                let at = col.saturating_sub(2) + usize::from(self.pick(5));
                self.out.push_str(&format!("{}# note ✓\n", " ".repeat(at)));
            }
            1 => {
                let spaces = usize::from(self.pick(4));
                self.out.push_str(&format!("{}\n", " ".repeat(spaces)));
            }
            _ => {}
        }
    }

    /// The rest of a line that holds `tree`'s start, and the lines after it.
    fn value(&mut self, tree: &Tree, col: usize, in_map: bool) {
        let step = usize::from(self.pick(4)) + 1;
        match tree {
            Tree::Leaf(text) => self.out.push_str(&format!(" {text}\n")),
            Tree::Literal(header, lines) => {
                self.out.push_str(&format!(" {header}\n"));
                for (extra, text) in lines {
                    if text.is_empty() {
                        let spaces = usize::from(self.pick(3)) * (col + step) / 2;
                        self.out.push_str(&format!("{}\n", " ".repeat(spaces)));
                    } else {
                        let pad = " ".repeat(col + step + extra);
                        self.out.push_str(&format!("{pad}{text}\n"));
                    }
                }
            }
            Tree::Map(entries) => {
                self.out.push('\n');
                self.map(entries, col + step);
            }
            Tree::Seq(items) => {
                self.out.push('\n');
                let indentless = in_map && self.pick(2) == 0;
                self.seq(items, if indentless { col } else { col + step });
            }
        }
    }

    fn map(&mut self, entries: &[(&str, Tree)], col: usize) {
        for (key, value) in entries {
            self.decorate(col);
            self.out.push_str(&format!("{}{key}:", " ".repeat(col)));
            self.value(value, col, true);
        }
    }

    fn seq(&mut self, items: &[Tree], col: usize) {
        for item in items {
            self.decorate(col);
            self.out.push_str(&format!("{}-", " ".repeat(col)));
            match item {
                Tree::Map(entries) if self.pick(3) != 0 => {
                    // `- key: value`, the rest of the entries under the first.
                    let gap = usize::from(self.pick(3)) + 1;
                    let inner = col + 1 + gap;
                    let (key, value) = &entries[0];
                    self.out.push_str(&format!("{}{key}:", " ".repeat(gap)));
                    self.value(value, inner, true);
                    self.map(&entries[1..], inner);
                }
                _ => self.value(item, col, false),
            }
        }
    }
}

/// A realistic manifest, to break in small ways.
const MANIFEST: &str = "---\n# Deployment\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    note: |\n      keep\n\n      this\nspec:\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: app\n        image: \"example/app:1\"\n        args: [\"--port\", \"8080\"]\n        env:\n        - name: A\n          value: 'it''s'\n        -\n          name: B\n      volumes: []\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn agrees_with_saphyr_on_line_soup(
        lines in prop::collection::vec(line(), 1..16),
        marker in prop::sample::select(vec!["", "---\n", "--- # c\n", "--- x\n"]),
        newline in any::<bool>(),
    ) {
        let mut text = format!("{marker}{}", lines.join("\n"));
        if newline {
            text.push('\n');
        }
        agrees(&text);
    }

    #[test]
    fn agrees_with_saphyr_on_laid_out_trees(
        entries in prop::collection::vec((prop::sample::select(vec!["a", "kind", "spec"]), tree()), 1..4),
        style in prop::collection::vec(any::<u8>(), 1..64),
        marker in prop::sample::select(vec!["", "---\n", "--- # c\n"]),
    ) {
        let mut layout = Layout { style: style.iter().cycle(), out: marker.to_owned() };
        layout.map(&entries, 0);
        agrees(&layout.out);
    }

    #[test]
    fn agrees_with_saphyr_on_broken_manifests(
        edits in prop::collection::vec(
            (0..MANIFEST.len(), 0..3usize, prop::sample::select(vec![
                " ", "  ", "\n", "-", ":", "#", "'", "\"", "|", "[", "]", "{", "}", ",", "&", "*",
                "!", "?", ">", "\t", "x", "- ", ": ", " #", "é", "\u{feff}",
            ])),
            1..4,
        ),
    ) {
        let mut text = MANIFEST.to_owned();
        for (at, delete, insert) in edits {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + delete).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, insert);
        }
        agrees(&text);
    }
}

#[test]
fn takes_the_manifest_the_broken_ones_come_from() {
    assert!(agrees(MANIFEST));
}

//! Fuzzing the YAML reader (split, parse, convert to JSON as kubectl reads it).
//!
//! Each target runs a few hundred inputs in a normal `cargo test`; `MESH_FUZZ_CASES=N` runs N
//! (`cargo xtask fuzz` sets it), and `MESH_FUZZ_SEED=S` replays a run. Properties: no input panics
//! (debug builds also check that the quick parser and saphyr-parser build the same tree), every
//! input is handled within a time bound, aliases cannot blow up the output, and generated documents
//! read back as exactly the values they were written from.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod fuzz_support;

use std::iter::Cycle;
use std::slice::Iter;

use fuzz_support::fuzz;
use mesh_inject::yaml::scalar::is_plain_safe;
use mesh_inject::yaml::{ALIAS_EXPANSION_RATIO, MIN_ALIAS_BUDGET, to_json_documents};
use mesh_inject::{Format, Options, inject, render_as};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Runs every reader over `text`; whatever it accepts must stay within the output bound.
fn read_all(text: &str) -> Result<(), TestCaseError> {
    if let Ok(docs) = to_json_documents(text) {
        let written: usize = docs.iter().map(|d| d.to_string().len()).sum();
        // Aliases may repeat up to ALIAS_EXPANSION_RATIO times what the document writes (nodes
        // plus scalar and key bytes, at most about two per byte of text), or MIN_ALIAS_BUDGET;
        // JSON takes at most 6 bytes for one of those (`null,` or a `\u0001` escape).
        let bound = 6 * (ALIAS_EXPANSION_RATIO + 1) * 2 * (text.len() + 8) + 6 * MIN_ALIAS_BUDGET;
        prop_assert!(
            written <= bound,
            "{} bytes of YAML became {written} bytes of JSON (bound {bound})",
            text.len()
        );
    }
    let _ = render_as(text, Format::Json);
    let _ = render_as(text, Format::Yaml);
    let _ = inject(text, &Options::default()).map(|t| t.output(text));
    Ok(())
}

#[test]
fn arbitrary_bytes() {
    fuzz(
        "yaml: arbitrary bytes",
        512,
        prop::collection::vec(any::<u8>(), 0..600),
        |bytes| read_all(&String::from_utf8_lossy(&bytes)),
    );
}

/// Text from YAML's significant characters and tokens, so that most inputs get past the first
/// character.
#[test]
fn yaml_token_soup() {
    let token = prop::sample::select(
        &[
            " ",
            "  ",
            "\n",
            "\r\n",
            "\t",
            "- ",
            ": ",
            ":",
            "? ",
            ",",
            "[",
            "]",
            "{",
            "}",
            "#",
            "# c\n",
            "&a ",
            "&b ",
            "*a",
            "*b",
            "<<: ",
            "!!str ",
            "!t ",
            "|",
            "|-",
            "|+",
            ">",
            ">-",
            "|2",
            "'",
            "\"",
            "\\",
            "\\u00e9",
            "---\n",
            "--- ",
            "...\n",
            "%YAML 1.2\n",
            "a",
            "kind",
            "x: y\n",
            "é",
            "\u{feff}",
            "\0",
            "~",
            "null",
            "yes",
            "0x1f",
            "1e3",
            "-",
            "--",
            "@",
            "`",
        ][..],
    );
    fuzz(
        "yaml: token soup",
        512,
        prop::collection::vec(token, 0..80),
        |tokens| read_all(&tokens.concat()),
    );
}

/// Nesting near and past the reader's limit, in block and flow styles: refused or read, never a
/// stack overflow.
#[test]
fn deep_nesting() {
    let opener = prop::sample::select(&["[", "{a: ", "- ", "b:\n", "? "][..]);
    fuzz(
        "yaml: deep nesting",
        64,
        (
            prop::collection::vec(opener, 1..4),
            1usize..700,
            any::<bool>(),
        ),
        |(openers, depth, close)| {
            let mut text = String::new();
            for i in 0..depth {
                let opener = openers[i % openers.len()];
                if opener.ends_with('\n') || opener == "- " || opener == "? " {
                    // Block openers indent what follows.
                    text.push_str(opener);
                    if opener.ends_with('\n') {
                        text.push_str(&" ".repeat(i + 1));
                    }
                } else {
                    text.push_str(opener);
                }
            }
            text.push('x');
            if close {
                for opener in openers
                    .iter()
                    .cycle()
                    .take(depth)
                    .collect::<Vec<_>>()
                    .iter()
                    .rev()
                {
                    match **opener {
                        "[" => text.push(']'),
                        "{a: " => text.push('}'),
                        _ => {}
                    }
                }
            }
            text.push('\n');
            read_all(&text)
        },
    );
}

/// Documents rendered from a value in random YAML styles read back as that value.
#[test]
fn rendered_documents_read_back() {
    fuzz(
        "yaml: rendered documents",
        384,
        (
            prop::collection::vec(document(), 1..4),
            choices(),
            any::<bool>(),
        ),
        |(docs, choices, crlf)| {
            let (text, expected) = render_stream(&docs, &choices, crlf);
            let read = to_json_documents(&text)
                .map_err(|e| TestCaseError::fail(format!("{e} in:\n{text}")))?;
            prop_assert_eq!(&read, &expected, "read back differently:\n{}", text);
            read_all(&text)
        },
    );
}

/// Rendered documents with random edits: anything may happen but a panic or a blow-up.
#[test]
fn mutated_documents() {
    let edit = (
        any::<prop::sample::Index>(),
        0usize..4,
        prop::sample::select(
            &[
                "",
                " ",
                "  ",
                "\n",
                "-",
                "- ",
                ":",
                ": ",
                "#",
                "'",
                "\"",
                "|",
                ">",
                "[",
                "]",
                "{",
                "}",
                ",",
                "&a ",
                "*a",
                "*a0",
                "&a0 ",
                "<<: *a0\n",
                "? ",
                "\t",
                "---\n",
                "\\",
                "é",
            ][..],
        ),
    );
    fuzz(
        "yaml: mutated documents",
        512,
        (
            prop::collection::vec(document(), 1..3),
            choices(),
            prop::collection::vec(edit, 1..6),
        ),
        |(docs, choices, edits)| {
            let (mut text, _) = render_stream(&docs, &choices, false);
            for (at, delete, insert) in edits {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + delete).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, insert);
            }
            read_all(&text)
        },
    );
}

/// Aliases of large scalars nested a few levels: the reader refuses them or stays in bounds.
#[test]
fn alias_amplification() {
    fuzz(
        "yaml: alias amplification",
        128,
        (1usize..2000, 0usize..6, 2usize..12, 0u8..3),
        |(scalar_len, levels, fanout, shape)| {
            let mut text = match shape {
                0 => format!("l0: &l0 {}\n", "s".repeat(scalar_len)),
                1 => format!("l0: &l0 {{{}: v}}\n", "k".repeat(scalar_len)),
                // The scalar as the key of many entries.
                _ => {
                    let keys: String = (0..fanout * 50)
                        .map(|i| format!("  ? *k\n  : {i}\n"))
                        .collect();
                    format!("l0: &k {}\nmany:\n{keys}", "k".repeat(scalar_len))
                }
            };
            for level in 1..=levels {
                let prev = level - 1;
                let items = vec![format!("*l{prev}"); fanout].join(", ");
                text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
            }
            read_all(&text)
        },
    );
}

// ---- A value, and its rendering in random styles ----

/// A document's content. Maps have distinct keys.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A string of several lines, which may be written as a literal block scalar.
    Lines(String),
    Seq(Vec<Model>),
    Map(Vec<(String, Model)>),
}

impl Model {
    fn json(&self) -> Value {
        match self {
            Model::Null => Value::Null,
            Model::Bool(b) => Value::Bool(*b),
            Model::Int(i) => Value::from(*i),
            Model::Str(s) | Model::Lines(s) => Value::String(s.clone()),
            Model::Seq(items) => Value::Array(items.iter().map(Model::json).collect()),
            Model::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.json())).collect())
            }
        }
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_.-]{0,6}",
        1 => "[a-zA-Z0-9 :#,'\"é-]{1,8}",
    ]
    .prop_filter("merge key", |k| k != "<<")
}

fn leaf() -> impl Strategy<Value = Model> {
    prop_oneof![
        1 => Just(Model::Null),
        1 => any::<bool>().prop_map(Model::Bool),
        2 => prop_oneof![-1000i64..1000, any::<i64>()].prop_map(Model::Int),
        4 => "[a-z][a-z0-9.-]{0,8}".prop_map(Model::Str),
        3 => "[a-zA-Z0-9 :#,'\"\\\\\\[\\]{}&*!|>%@`\t\n\u{7f}é-]{0,12}".prop_map(Model::Str),
        1 => prop::collection::vec("[a-z][a-z #:'\"-]{0,10}", 2..4).prop_map(|l| Model::Lines(l.join("\n"))),
    ]
}

/// Values with repeated subtrees, so that aliases and merge keys have something to refer to.
fn model() -> impl Strategy<Value = Model> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Model::Seq),
            prop::collection::vec((key(), inner.clone()), 0..5).prop_map(map),
            // A value used twice.
            inner.prop_map(|v| Model::Seq(vec![v.clone(), v])),
        ]
    })
}

fn map(entries: Vec<(String, Model)>) -> Model {
    let mut out: Vec<(String, Model)> = Vec::new();
    for (k, v) in entries {
        if !out.iter().any(|(o, _)| *o == k) {
            out.push((k, v));
        }
    }
    Model::Map(out)
}

/// A document: a mapping whose later entries may repeat earlier ones.
fn document() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec((key(), model()), 1..6),
        prop::collection::vec((key(), any::<prop::sample::Index>()), 0..3),
    )
        .prop_map(|(entries, repeats)| {
            let mut all = entries.clone();
            for (k, i) in repeats {
                all.push((k, i.get(&entries).1.clone()));
            }
            map(all)
        })
}

fn choices() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..64)
}

fn render_stream(docs: &[Model], choices: &[u8], crlf: bool) -> (String, Vec<Value>) {
    let mut r = Renderer {
        choices: choices.iter().cycle(),
        out: String::new(),
        anchors: Vec::new(),
        defined: 0,
    };
    let mut expected = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            let marker = if r.pick(4) == 0 {
                "...\n---\n"
            } else {
                "---\n"
            };
            r.out.push_str(marker);
        }
        // Anchors are per document.
        r.anchors.clear();
        let Model::Map(entries) = doc else {
            unreachable!("documents are mappings")
        };
        expected.push(r.block_map(entries, 0));
    }
    let text = if crlf {
        r.out.replace('\n', "\r\n")
    } else {
        r.out
    };
    (text, expected)
}

struct Renderer<'c> {
    choices: Cycle<Iter<'c, u8>>,
    out: String,
    /// Anchors whose nodes are complete, with their values.
    anchors: Vec<(String, Value)>,
    /// Anchors defined so far.
    defined: usize,
}

/// Where a block node is written: after `key:` at this indentation, or after `-` at this column.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Value(usize),
    Item(usize),
}

impl Renderer<'_> {
    fn pick(&mut self, n: u8) -> u8 {
        self.choices.next().copied().unwrap_or(0) % n
    }

    /// An alias to a complete anchored node with this value, sometimes.
    fn alias(&mut self, value: &Value) -> Option<String> {
        let name = self
            .anchors
            .iter()
            .find(|(_, v)| v == value)
            .map(|(n, _)| n.clone())?;
        (self.pick(2) == 0).then(|| format!("*{name}"))
    }

    fn anchor(&mut self) -> Option<String> {
        // Unique names: a name defined twice refers to its latest definition in the text, which
        // is not the last to complete when one node holds the other.
        (self.pick(5) == 0).then(|| {
            self.defined += 1;
            format!("a{}", self.defined)
        })
    }

    fn finish_anchor(&mut self, name: Option<String>, value: &Value) {
        if let Some(name) = name {
            self.anchors.retain(|(n, _)| *n != name);
            self.anchors.push((name, value.clone()));
        }
    }

    fn comment(&mut self) -> &'static str {
        if self.pick(6) == 0 { " # note" } else { "" }
    }

    /// Writes block mapping entries at `indent`, the first one's key already indented when
    /// `compact` (it follows a `- `).
    fn block_map(&mut self, entries: &[(String, Model)], indent: usize) -> Value {
        self.block_map_at(entries, indent, false)
    }

    fn block_map_at(&mut self, entries: &[(String, Model)], indent: usize, compact: bool) -> Value {
        let pad = " ".repeat(indent);
        let mut map = Map::new();
        let mut merged = Map::new();
        let mut first = true;
        let merge_from = self
            .anchors
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(n, v)| (n.clone(), v.clone()))
            .next();
        if let Some((name, Value::Object(from))) = merge_from
            && self.pick(3) == 0
        {
            if !(compact && first) {
                self.out.push_str(&pad);
            }
            self.out.push_str(&format!("<<: *{name}\n"));
            first = false;
            merged = from;
        }
        for (key, value) in entries {
            if !(compact && first) {
                match self.pick(8) {
                    0 => self.out.push('\n'),
                    1 => self.out.push_str(&format!("{pad}# about {key}\n")),
                    _ => {}
                }
                self.out.push_str(&pad);
            }
            first = false;
            let key_text = self.key_text(key);
            self.out.push_str(&key_text);
            self.out.push(':');
            let v = self.block_value(value, At::Value(indent));
            map.insert(key.clone(), v);
        }
        for (k, v) in merged {
            map.entry(k).or_insert(v);
        }
        Value::Object(map)
    }

    fn key_text(&mut self, key: &str) -> String {
        if is_plain_safe(key) || (key_is_plain(key) && self.pick(3) != 0) {
            key.to_owned()
        } else {
            self.quoted(key)
        }
    }

    /// Writes the node after `key:` or `-`, through its last line break.
    fn block_value(&mut self, m: &Model, at: At) -> Value {
        let expected = m.json();
        if let Some(alias) = self.alias(&expected) {
            let comment = self.comment();
            self.out.push_str(&format!(" {alias}{comment}\n"));
            return expected;
        }
        let anchor = self.anchor();
        let prefix = anchor
            .as_ref()
            .map_or_else(String::new, |a| format!(" &{a}"));
        let (indent, child) = match at {
            At::Value(indent) => (indent, indent + 1 + self.pick(3) as usize),
            At::Item(col) => (col, col + 2),
        };
        let value = match m {
            Model::Seq(items) if !items.is_empty() && self.pick(3) != 0 => {
                let compact = anchor.is_none() && matches!(at, At::Item(_)) && self.pick(2) == 0;
                let item_col = if compact {
                    self.out.push(' ');
                    child
                } else {
                    let comment = self.comment();
                    self.out.push_str(&format!("{prefix}{comment}\n"));
                    // Under a key, a sequence may sit at the key's own indentation.
                    match at {
                        At::Value(_) if self.pick(2) == 0 => indent,
                        _ => child,
                    }
                };
                let mut values = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if !(compact && i == 0) {
                        self.out.push_str(&" ".repeat(item_col));
                    }
                    self.out.push('-');
                    values.push(self.block_value(item, At::Item(item_col)));
                }
                Value::Array(values)
            }
            Model::Map(entries) if !entries.is_empty() && self.pick(3) != 0 => {
                if anchor.is_none() && matches!(at, At::Item(_)) && self.pick(2) == 0 {
                    // `- key: value` with the next keys lined up under the first.
                    let spaces = 1 + self.pick(3) as usize;
                    self.out.push_str(&" ".repeat(spaces));
                    self.block_map_at(entries, indent + 1 + spaces, true)
                } else {
                    let comment = self.comment();
                    self.out.push_str(&format!("{prefix}{comment}\n"));
                    self.block_map(entries, child)
                }
            }
            Model::Lines(s) if self.pick(2) == 0 => {
                let comment = self.comment();
                self.out.push_str(&format!("{prefix} |-{comment}\n"));
                for line in s.split('\n') {
                    self.out.push_str(&format!("{}{line}\n", " ".repeat(child)));
                }
                expected.clone()
            }
            Model::Null if anchor.is_none() && self.pick(3) == 0 => {
                // Nothing at all after the key or dash.
                self.out.push('\n');
                expected.clone()
            }
            _ => {
                self.out.push_str(&prefix);
                self.out.push(' ');
                let v = self.flow_node(m, anchor.is_none());
                let comment = self.comment();
                self.out.push_str(comment);
                self.out.push('\n');
                v
            }
        };
        self.finish_anchor(anchor, &value);
        value
    }

    /// Writes `m` in flow style on one line.
    fn flow(&mut self, m: &Model) -> Value {
        self.flow_node(m, true)
    }

    /// Writes `m` in flow style; `free` when it may take an anchor or be an alias (it has no
    /// anchor written before it).
    fn flow_node(&mut self, m: &Model, free: bool) -> Value {
        let expected = m.json();
        if free && let Some(alias) = self.alias(&expected) {
            self.out.push_str(&alias);
            return expected;
        }
        let anchor = if free { self.anchor() } else { None };
        if let Some(a) = &anchor {
            self.out.push_str(&format!("&{a} "));
        }
        match m {
            Model::Seq(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        let comma = if self.pick(2) == 0 { ", " } else { "," };
                        self.out.push_str(comma);
                    }
                    self.flow(item);
                }
                self.out.push(']');
            }
            Model::Map(entries) => {
                self.out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let key = self.key_text(k);
                    self.out.push_str(&key);
                    self.out.push_str(": ");
                    self.flow(v);
                }
                self.out.push('}');
            }
            Model::Null => {
                let text = ["~", "null", "Null", "NULL"][self.pick(4) as usize];
                self.out.push_str(text);
            }
            Model::Bool(b) => {
                let words: [&str; 5] = if *b {
                    ["true", "True", "yes", "on", "Y"]
                } else {
                    ["false", "FALSE", "no", "off", "N"]
                };
                let word = words[self.pick(5) as usize];
                self.out.push_str(word);
            }
            Model::Int(i) => {
                let text = match self.pick(4) {
                    0 if *i >= 0 => format!("0x{i:x}"),
                    1 if *i >= 0 => format!("0o{i:o}"),
                    2 if *i >= 0 => format!("+{i}"),
                    _ => i.to_string(),
                };
                self.out.push_str(&text);
            }
            Model::Str(s) | Model::Lines(s) => {
                let text = if is_plain_safe(s) && self.pick(3) != 0 {
                    s.clone()
                } else {
                    self.quoted(s)
                };
                self.out.push_str(&text);
            }
        }
        self.finish_anchor(anchor, &expected);
        expected
    }

    /// `s` single-quoted where it can be, else double-quoted with escapes.
    fn quoted(&mut self, s: &str) -> String {
        if self.pick(2) == 0 && s.chars().all(|c| c == ' ' || !c.is_control()) {
            return format!("'{}'", s.replace('\'', "''"));
        }
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => {
                    let tab = if self.pick(2) == 0 { "\\t" } else { "\t" };
                    out.push_str(tab);
                }
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if !c.is_ascii() && self.pick(2) == 0 => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// A key that reads back as itself when written plain, though it may look like another type.
fn key_is_plain(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

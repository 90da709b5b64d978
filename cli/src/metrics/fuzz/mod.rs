//! Fuzzing the Prometheus text parser, the renderer `--obfuscate` writes with, and the histogram
//! arithmetic `mesh stat` runs on what the parser reads.
//!
//! A few hundred inputs per target in a normal `cargo test`; `MESH_FUZZ_CASES=N` runs N (see
//! `runner.rs` and `cargo xtask fuzz`). Properties: no input panics or takes long; pages written
//! from a model parse back as exactly that model; and any page that parses renders to text that
//! parses back to the same page.

pub(crate) mod runner;

use std::borrow::Cow;

use proptest::prelude::*;
use runner::fuzz;

use super::parse::{Exposition, Kind, parse, render};
use super::{Buckets, obfuscate};

/// Parses `text`; a page that parses must survive rendering, and its histograms the arithmetic.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Ok(page) = parse(text) else {
        return Ok(());
    };
    let mut again = String::new();
    render(&page, &mut again);
    let reparsed =
        parse(&again).map_err(|e| TestCaseError::fail(format!("{e} in re-rendered:\n{again}")))?;
    prop_assert!(
        same_page(&page, &reparsed),
        "render changed the page:\n{:?}\nfrom {:?}\nto {:?}",
        again,
        page,
        reparsed
    );
    let _ = obfuscate(text);
    for family in &page.families {
        let points: Vec<(f64, f64)> = family
            .samples
            .iter()
            .filter_map(|s| Some((s.label("le")?.parse().ok()?, s.value)))
            .collect();
        let buckets = Buckets::from_points(points);
        let earlier = Buckets::from_points(vec![(1.0, 0.0), (f64::INFINITY, 0.0)]);
        for q in [0.0, 0.5, 0.95, 0.99, 1.0, -1.0, f64::NAN] {
            let _ = buckets.quantile(q);
        }
        let _ = buckets.since(&earlier);
        let _ = Buckets::sum([&buckets, &earlier]);
    }
    Ok(())
}

/// Equal but for `declared`, which rendering always makes true, and NaN values, which are
/// compared by their text.
fn same_page(a: &Exposition<'_>, b: &Exposition<'_>) -> bool {
    a.families.len() == b.families.len()
        && a.families.iter().zip(&b.families).all(|(f, g)| {
            f.name == g.name
                && f.help == g.help
                && f.kind == g.kind
                && f.samples.len() == g.samples.len()
                && f.samples.iter().zip(&g.samples).all(|(s, t)| {
                    s.name == t.name
                        && s.labels == t.labels
                        && s.value_text == t.value_text
                        && s.timestamp == t.timestamp
                })
        })
}

#[test]
fn arbitrary_bytes() {
    fuzz(
        "prometheus: arbitrary bytes",
        512,
        prop::collection::vec(any::<u8>(), 0..400),
        |bytes| check(&String::from_utf8_lossy(&bytes)),
    );
}

/// Lines made of the format's own tokens, so that most inputs reach deep into a line.
#[test]
fn token_soup() {
    let token = prop::sample::select(
        &[
            "# HELP ",
            "# TYPE ",
            "#",
            " ",
            "\t",
            "\n",
            "\r\n",
            "\r",
            "m",
            "m_bucket",
            "m_sum",
            "m_count",
            "x",
            "_",
            ":",
            "{",
            "}",
            "=",
            "\"",
            ",",
            "\\",
            "\\n",
            "\\\"",
            "le",
            "1",
            "-2",
            "1e3",
            "+Inf",
            "-Inf",
            "NaN",
            "0x1",
            "1_0",
            "counter",
            "gauge",
            "histogram",
            "summary",
            "untyped",
            "unknown",
            "é",
            "\u{0}",
        ][..],
    );
    fuzz(
        "prometheus: token soup",
        512,
        prop::collection::vec(token, 0..60),
        |tokens| check(&tokens.concat()),
    );
}

/// Pages written from a model, in random but valid layouts, parse as that model.
#[test]
fn written_pages_parse_as_written() {
    fuzz(
        "prometheus: written pages",
        384,
        (page(1..5), choices(), any::<bool>()),
        |(families, choices, crlf)| {
            let text = write_page(&families, &choices, crlf);
            let page = parse(&text).map_err(|e| TestCaseError::fail(format!("{e} in:\n{text}")))?;
            // A family with no help, type or sample writes nothing.
            let families: Vec<&FamilyModel> = families
                .iter()
                .filter(|f| f.help.is_some() || f.kind.is_some() || !f.samples.is_empty())
                .collect();
            prop_assert_eq!(page.families.len(), families.len(), "{}", text);
            for (got, want) in page.families.iter().zip(families) {
                prop_assert_eq!(got.name, want.name.as_str());
                prop_assert_eq!(got.help.as_deref(), want.help.as_deref());
                prop_assert_eq!(got.kind, want.kind.unwrap_or(Kind::Untyped));
                prop_assert_eq!(got.declared, want.kind.is_some());
                prop_assert_eq!(got.samples.len(), want.samples.len());
                for (s, w) in got.samples.iter().zip(&want.samples) {
                    prop_assert_eq!(s.name, format!("{}{}", want.name, w.suffix));
                    let labels: Vec<(&str, &str)> =
                        s.labels.iter().map(|(n, v)| (*n, v.as_ref())).collect();
                    let wanted: Vec<(&str, &str)> = w
                        .labels
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    prop_assert_eq!(labels, wanted);
                    prop_assert!(
                        s.value.to_bits() == w.value.to_bits()
                            || (s.value.is_nan() && w.value.is_nan())
                            || s.value == w.value,
                        "value {} read as {}",
                        w.value,
                        s.value
                    );
                    prop_assert_eq!(s.timestamp, w.timestamp);
                }
            }
            check(&text)
        },
    );
}

/// Written pages with random edits.
#[test]
fn mutated_pages() {
    let edit = (
        any::<prop::sample::Index>(),
        0usize..3,
        prop::sample::select(
            &[
                "",
                " ",
                "\t",
                "\n",
                "\r",
                "#",
                "{",
                "}",
                "=",
                "\"",
                ",",
                "\\",
                "_bucket",
                "_sum",
                "# TYPE m histogram\n",
                "le=\"1\"",
                " NaN",
                " +Inf",
                "é",
            ][..],
        ),
    );
    fuzz(
        "prometheus: mutated pages",
        512,
        (page(1..4), choices(), prop::collection::vec(edit, 1..6)),
        |(families, choices, edits)| {
            let mut text = write_page(&families, &choices, false);
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
            check(&text)
        },
    );
}

// ---- A page model, and writing it out ----

#[derive(Debug, Clone)]
struct FamilyModel {
    name: String,
    help: Option<String>,
    /// `None`: no `# TYPE` line.
    kind: Option<Kind>,
    samples: Vec<SampleModel>,
}

#[derive(Debug, Clone)]
struct SampleModel {
    suffix: &'static str,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp: Option<i64>,
}

fn kind() -> impl Strategy<Value = Option<Kind>> {
    prop::option::of(prop::sample::select(
        &[
            Kind::Counter,
            Kind::Gauge,
            Kind::Histogram,
            Kind::Summary,
            Kind::Untyped,
        ][..],
    ))
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (0u32..100_000).prop_map(f64::from),
        2 => proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::NAN),
    ]
}

fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        ("[a-zA-Z_][a-zA-Z0-9_]{0,6}", "[ -~\t\n\\\\\"é}{,=]{0,10}"),
        0..4,
    )
    .prop_map(|labels| {
        let mut out: Vec<(String, String)> = Vec::new();
        for (n, v) in labels {
            if !out.iter().any(|(o, _)| *o == n) {
                out.push((n, v));
            }
        }
        out
    })
}

/// A family; [`page`] names it apart from the others (the rest of the name has no underscore, so
/// no name can be taken for another's `_bucket`, `_sum` or `_count`).
fn family() -> impl Strategy<Value = FamilyModel> {
    (
        "[a-z:][a-z0-9:]{0,6}",
        prop::option::of("[!-~][ -~é\\\\\n]{0,16}"),
        kind(),
        prop::collection::vec(
            (0usize..3, labels(), value(), prop::option::of(any::<i64>())),
            0..5,
        ),
    )
        .prop_map(|(name, help, kind, samples)| {
            let samples = samples
                .into_iter()
                .map(|(suffix, labels, value, timestamp)| {
                    let suffixes: &[&'static str] = match kind {
                        Some(Kind::Histogram) => &["_bucket", "_sum", "_count"],
                        Some(Kind::Summary) => &["", "_sum", "_count"],
                        _ => &[""],
                    };
                    SampleModel {
                        suffix: suffixes[suffix % suffixes.len()],
                        labels,
                        value,
                        timestamp,
                    }
                })
                .collect();
            FamilyModel {
                name,
                help,
                kind,
                samples,
            }
        })
}

/// Families named apart: each name starts with its index.
fn page(families: std::ops::Range<usize>) -> impl Strategy<Value = Vec<FamilyModel>> {
    prop::collection::vec(family(), families).prop_map(|mut families| {
        for (i, f) in families.iter_mut().enumerate() {
            f.name = format!("f{i}{}", f.name);
        }
        families
    })
}

fn choices() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..48)
}

fn write_page(families: &[FamilyModel], choices: &[u8], crlf: bool) -> String {
    let mut choices = choices.iter().cycle();
    let mut pick = |n: u8| choices.next().copied().unwrap_or(0) % n;
    let mut out = String::new();
    let eol = if crlf { "\r\n" } else { "\n" };
    for family in families {
        let blank = [" ", "  ", "\t"][usize::from(pick(3))];
        if pick(4) == 0 {
            out.push_str(&format!("# a comment about {}{eol}", family.name));
        }
        if pick(5) == 0 {
            out.push_str(eol);
        }
        if let Some(help) = &family.help {
            let hash = if pick(4) == 0 { "#" } else { "# " };
            let escaped = help.replace('\\', "\\\\").replace('\n', "\\n");
            out.push_str(&format!(
                "{hash}HELP{blank}{}{blank}{escaped}{eol}",
                family.name
            ));
        }
        if let Some(kind) = family.kind {
            let word = match kind {
                Kind::Untyped if pick(2) == 0 => "unknown",
                kind => kind.as_str(),
            };
            out.push_str(&format!("# TYPE{blank}{}{blank}{word}{eol}", family.name));
        }
        for sample in &family.samples {
            if pick(6) == 0 {
                out.push_str(blank);
            }
            out.push_str(&family.name);
            out.push_str(sample.suffix);
            if !sample.labels.is_empty() || pick(6) == 0 {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let space = if pick(5) == 0 { blank } else { "" };
                    let escaped = value
                        .replace('\\', "\\\\")
                        .replace('\n', "\\n")
                        .replace('"', "\\\"");
                    out.push_str(&format!("{space}{name}{space}={space}\"{escaped}\"{space}"));
                }
                if !sample.labels.is_empty() && pick(3) == 0 {
                    out.push(',');
                }
                out.push('}');
            }
            out.push_str(blank);
            out.push_str(&value_text(sample.value, pick(4)));
            if let Some(ts) = sample.timestamp {
                out.push_str(&format!("{blank}{ts}"));
            }
            if pick(5) == 0 {
                out.push_str(blank);
            }
            out.push_str(eol);
        }
    }
    out
}

/// `v` in one of the spellings Go's `ParseFloat` reads.
fn value_text(v: f64, style: u8) -> Cow<'static, str> {
    if v.is_nan() {
        return Cow::Borrowed(if style.is_multiple_of(2) {
            "NaN"
        } else {
            "nan"
        });
    }
    if v.is_infinite() {
        return Cow::Borrowed(match (v > 0.0, style % 3) {
            (true, 0) => "+Inf",
            (true, 1) => "Inf",
            (true, _) => "+inf",
            (false, 0) => "-Inf",
            (false, _) => "-inf",
        });
    }
    Cow::Owned(match style {
        0 => format!("{v:e}"),
        1 => format!("{v:?}"),
        2 if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        _ => format!("{v}"),
    })
}

//! Properties of inject and uninject on generated block-style manifests: inject only adds lines, is
//! idempotent, and uninject restores the exact bytes. Plus: no input, however broken, panics.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

use mesh_inject::{Format, Options, inject, render_as, uninject};
use proptest::prelude::*;

/// A YAML value to render in block style.
#[derive(Debug, Clone)]
enum Value {
    Scalar(Scalar),
    Map(Vec<(String, Value)>),
    Seq(Vec<Value>),
    /// A literal block scalar, with its lines.
    Literal(Vec<String>),
}

#[derive(Debug, Clone)]
enum Scalar {
    Plain(String),
    Single(String),
    Double(String),
}

/// How the document is laid out.
#[derive(Debug, Clone)]
struct Layout {
    indent: usize,
    /// Whether sequence items are indented under their key.
    indent_seqs: bool,
    /// Insert a comment or a blank line before entries where this is true, cycling.
    decorations: Vec<u8>,
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        word().prop_map(Scalar::Plain),
        "[a-zA-Z0-9 :#,-]{0,12}".prop_map(Scalar::Single),
        "[a-zA-Z0-9 :#'\\\\-]{0,12}".prop_map(Scalar::Double),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => scalar().prop_map(Value::Scalar),
        1 => prop::collection::vec("[a-z][a-z ]{0,9}", 1..3).prop_map(Value::Literal),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec((word(), inner.clone()), 1..4).prop_map(Value::Map),
            prop::collection::vec(inner, 1..3).prop_map(Value::Seq),
        ]
    })
}

fn extra_entries() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec((word().prop_map(|w| format!("x-{w}")), value()), 0..3)
}

const KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
    "Namespace",
    "Service",
    "ConfigMap",
];

/// A manifest: kind, extra keys sprinkled in, and whether the pod metadata has labels and
/// annotations already.
fn manifest() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(KINDS),
        word(),
        extra_entries(),
        extra_entries(),
        prop::option::of(prop::collection::vec((word(), scalar()), 1..3)),
        prop::option::of(prop::collection::vec(
            (word().prop_map(|w| format!("a.io/{w}")), scalar()),
            1..3,
        )),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, name, top_extra, pod_extra, labels, annotations, init, volumes)| {
                let mut pod_meta: Vec<(String, Value)> = Vec::new();
                if let Some(labels) = labels {
                    pod_meta.push((
                        "labels".into(),
                        Value::Map(
                            labels
                                .into_iter()
                                .map(|(k, v)| (k, Value::Scalar(v)))
                                .collect(),
                        ),
                    ));
                }
                if let Some(ann) = annotations {
                    pod_meta.push((
                        "annotations".into(),
                        Value::Map(
                            ann.into_iter()
                                .map(|(k, v)| (k, Value::Scalar(v)))
                                .collect(),
                        ),
                    ));
                }
                let containers = Value::Seq(vec![Value::Map(vec![
                    ("name".into(), Value::Scalar(Scalar::Plain("app".into()))),
                    (
                        "image".into(),
                        Value::Scalar(Scalar::Double("example/app:1".into())),
                    ),
                ])]);
                let mut pod_spec = vec![("containers".into(), containers)];
                let named = |n: &str| {
                    Value::Map(vec![(
                        "name".into(),
                        Value::Scalar(Scalar::Plain(n.into())),
                    )])
                };
                if init {
                    pod_spec.push(("initContainers".into(), Value::Seq(vec![named("setup")])));
                }
                if volumes {
                    pod_spec.push(("volumes".into(), Value::Seq(vec![named("data")])));
                }
                pod_spec.extend(pod_extra);
                let mut template: Vec<(String, Value)> = Vec::new();
                if !pod_meta.is_empty() {
                    template.push(("metadata".into(), Value::Map(pod_meta.clone())));
                }
                template.push(("spec".into(), Value::Map(pod_spec.clone())));
                let plain = |s: &str| Value::Scalar(Scalar::Plain(s.into()));
                let mut meta = vec![("name".into(), plain(&name))];
                let mut doc = vec![
                    ("apiVersion".into(), plain("v1")),
                    ("kind".into(), plain(kind)),
                ];
                let spec = match kind {
                    "Pod" => {
                        meta.extend(pod_meta);
                        Some(Value::Map(pod_spec))
                    }
                    "CronJob" => Some(Value::Map(vec![
                        (
                            "schedule".into(),
                            Value::Scalar(Scalar::Double("* * * * *".into())),
                        ),
                        (
                            "jobTemplate".into(),
                            Value::Map(vec![(
                                "spec".into(),
                                Value::Map(vec![("template".into(), Value::Map(template))]),
                            )]),
                        ),
                    ])),
                    "Namespace" | "Service" | "ConfigMap" => None,
                    _ => Some(Value::Map(vec![("template".into(), Value::Map(template))])),
                };
                doc.push(("metadata".into(), Value::Map(meta)));
                if let Some(spec) = spec {
                    doc.push(("spec".into(), spec));
                }
                doc.extend(top_extra);
                Value::Map(doc)
            },
        )
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop::sample::select(&[2usize, 4][..]),
        any::<bool>(),
        prop::collection::vec(0u8..6, 1..8),
    )
        .prop_map(|(indent, indent_seqs, decorations)| Layout {
            indent,
            indent_seqs,
            decorations,
        })
}

fn render(value: &Value, layout: &Layout) -> String {
    let mut out = String::new();
    let mut counter = 0;
    render_entries(value, 0, layout, &mut counter, &mut out);
    out
}

fn decorate(layout: &Layout, counter: &mut usize, pad: &str, out: &mut String) {
    let d = layout.decorations[*counter % layout.decorations.len()];
    *counter += 1;
    match d {
        0 => out.push_str(&format!("{pad}# note {counter}\n")),
        1 => out.push('\n'),
        _ => {}
    }
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Plain(w) => w.clone(),
        Scalar::Single(t) => format!("'{}'", t.replace('\'', "''")),
        Scalar::Double(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

fn render_entries(
    value: &Value,
    depth: usize,
    layout: &Layout,
    counter: &mut usize,
    out: &mut String,
) {
    let Value::Map(entries) = value else { return };
    let pad = " ".repeat(depth);
    for (key, v) in entries {
        decorate(layout, counter, &pad, out);
        render_value(&format!("{pad}{key}:"), v, depth, layout, counter, out);
    }
}

/// Renders `v` after `head` (`key:` or `-`), at nesting `depth`.
fn render_value(
    head: &str,
    v: &Value,
    depth: usize,
    layout: &Layout,
    counter: &mut usize,
    out: &mut String,
) {
    match v {
        Value::Scalar(s) => out.push_str(&format!("{head} {}\n", scalar_text(s))),
        Value::Literal(lines) => {
            out.push_str(&format!("{head} |\n"));
            for line in lines {
                out.push_str(&format!("{}{line}\n", " ".repeat(depth + layout.indent)));
            }
        }
        Value::Map(_) => {
            out.push_str(&format!("{head}\n"));
            render_entries(v, depth + layout.indent, layout, counter, out);
        }
        Value::Seq(items) => {
            out.push_str(&format!("{head}\n"));
            let dash_depth = if layout.indent_seqs {
                depth + layout.indent
            } else {
                depth
            };
            for item in items {
                let dash = format!("{}-", " ".repeat(dash_depth));
                match item {
                    Value::Map(entries) => {
                        // The first entry shares the dash's line; the rest line up with it.
                        let inner = dash_depth + 2;
                        for (i, (key, v)) in entries.iter().enumerate() {
                            let head = if i == 0 {
                                format!("{dash} {key}:")
                            } else {
                                format!("{}{key}:", " ".repeat(inner))
                            };
                            render_value(&head, v, inner, layout, counter, out);
                        }
                    }
                    other => render_value(&dash, other, dash_depth + 2, layout, counter, out),
                }
            }
        }
    }
}

fn stream(docs: &[(Value, Layout)]) -> String {
    docs.iter()
        .map(|(v, l)| render(v, l))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn output(text: &str) -> String {
    output_with(text, &Options::default())
}

fn output_with(text: &str, options: &Options) -> String {
    match inject(text, options) {
        Ok(t) => t.output(text),
        Err(e) => panic!("{e} in:\n{text}"),
    }
}

fn manual() -> Options {
    Options {
        manual: Some(mesh_inject::ManualSettings {
            values: mesh_inject::values::Values::defaults(),
            trust_anchors_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                .into(),
            control_plane_namespace: "linkerd".into(),
            cli_version: "1.0.0".into(),
        }),
        ..Options::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn inject_only_adds_lines(docs in prop::collection::vec((manifest(), layout()), 1..4)) {
        let input = stream(&docs);
        let out = output(&input);
        let mut out_lines = out.split_inclusive('\n');
        for line in input.split_inclusive('\n') {
            let found = out_lines.by_ref().find(|l| *l == line);
            prop_assert!(found.is_some(), "line {:?} lost or reordered in:\n{}", line, out);
        }
        let added: Vec<&str> = out.lines().filter(|l| !input.lines().any(|i| i == *l)).collect();
        for line in added {
            let t = line.trim();
            prop_assert!(
                t == "metadata:" || t == "annotations:" || t == "linkerd.io/inject: enabled",
                "unexpected added line {:?}", line
            );
        }
    }

    #[test]
    fn inject_is_idempotent(docs in prop::collection::vec((manifest(), layout()), 1..4)) {
        let once = output(&stream(&docs));
        prop_assert_eq!(output(&once), once);
    }

    #[test]
    fn uninject_restores_the_bytes(docs in prop::collection::vec((manifest(), layout()), 1..4)) {
        let input = stream(&docs);
        let injected = output(&input);
        let restored = uninject(&injected).unwrap().output(&injected);
        prop_assert_eq!(restored, input);
    }

    #[test]
    fn manual_inject_only_adds_lines_and_uninject_restores(
        docs in prop::collection::vec((manifest(), layout()), 1..3)
    ) {
        let input = stream(&docs);
        let options = manual();
        let out = output_with(&input, &options);
        let mut out_lines = out.split_inclusive('\n');
        for line in input.split_inclusive('\n') {
            prop_assert!(out_lines.by_ref().any(|l| l == line), "line {:?} lost in:\n{}", line, out);
        }
        prop_assert_eq!(output_with(&out, &options), out.clone(), "manual inject is not idempotent");
        let restored = uninject(&out).unwrap().output(&out);
        prop_assert_eq!(restored, input);
    }

    #[test]
    fn the_annotation_lands_on_the_pod_template(doc in manifest(), layout in layout()) {
        let input = render(&doc, &layout);
        let json = render_as(&output(&input), Format::Json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let kind = value["kind"].as_str().unwrap().to_owned();
        let annotations = match kind.as_str() {
            "Pod" | "Namespace" => &value["metadata"]["annotations"],
            "CronJob" => &value["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"],
            "Service" | "ConfigMap" => {
                prop_assert_eq!(&json, &render_as(&input, Format::Json).unwrap());
                return Ok(());
            }
            _ => &value["spec"]["template"]["metadata"]["annotations"],
        };
        prop_assert_eq!(&annotations["linkerd.io/inject"], "enabled", "{}", json);
    }
}

// Fuzzing by property: many cases, any input, no panics.
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = inject(&text, &Options::default()).map(|t| t.output(&text));
        let _ = uninject(&text).map(|t| t.output(&text));
        let _ = render_as(&text, Format::Json);
        let _ = render_as(&text, Format::Yaml);
    }

    #[test]
    fn yaml_shaped_text_never_panics(
        pieces in prop::collection::vec(prop::sample::select(&[
            "kind: Pod\n", "kind: List\n", "items:\n", "- ", "  ", "metadata:", " {}", " []", "\n",
            "annotations:", " &a", " *a", "<<: *a\n", "---\n", "...\n", "spec:\n", "template:\n",
            "linkerd.io/inject: enabled\n", "{\"kind\": \"Pod\"}", "|\n", ">-\n", "# c\n", "\t", "'", "\"",
            "\r\n", "é", ": ", ",", "[", "]", "{", "}", "hostNetwork: true\n", "name: x\n",
        ][..]), 0..40)
    ) {
        let text: String = pieces.concat();
        if let Ok(t) = inject(&text, &Options::default()) {
            let out = t.output(&text);
            // Whatever inject writes must itself be valid input.
            prop_assert!(inject(&out, &Options::default()).is_ok(), "output does not parse:\n{}", out);
        }
        let _ = uninject(&text).map(|t| t.output(&text));
    }
}

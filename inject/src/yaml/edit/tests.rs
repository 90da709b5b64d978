use super::*;
use crate::yaml::parse_chunk;

const INJECT: &[(&str, &str)] = &[("linkerd.io/inject", "enabled")];

fn set(text: &str, path: &[&str], values: &[(&str, &str)]) -> String {
    let root = parse_chunk(text, 0, 1).unwrap().remove(0).unwrap();
    let json = text.trim_start().starts_with('{');
    let mut editor = Editor::new(text, &root, json);
    editor.set(&root, path, values).unwrap();
    let edits = editor.into_edits();
    apply(text, &edits).collect()
}

fn remove(text: &str, path: &[&str], keys: &[&str]) -> String {
    let root = parse_chunk(text, 0, 1).unwrap().remove(0).unwrap();
    let mut editor = Editor::new(text, &root, false);
    editor.remove(&root, path, keys);
    let edits = editor.into_edits();
    apply(text, &edits).collect()
}

#[track_caller]
fn round_trip(before: &str, path: &[&str], after: &str) {
    assert_eq!(set(before, path, INJECT), after, "inject");
    assert_eq!(set(after, path, INJECT), after, "inject is idempotent");
    assert_eq!(
        remove(after, path, &["linkerd.io/inject"]),
        before,
        "uninject"
    );
}

#[test]
fn appends_to_an_existing_block_mapping() {
    round_trip(
        "metadata:\n  annotations:\n    a: b # keep\n  labels:\n    app: web\n",
        &["metadata", "annotations"],
        "metadata:\n  annotations:\n    a: b # keep\n    linkerd.io/inject: enabled\n  labels:\n    app: web\n",
    );
}

#[test]
fn creates_missing_mappings_with_the_document_indentation() {
    round_trip(
        "metadata:\n    labels:\n        app: web\nspec: {}\n",
        &["metadata", "annotations"],
        "metadata:\n    labels:\n        app: web\n    annotations:\n        linkerd.io/inject: enabled\nspec: {}\n",
    );
    round_trip(
        "spec:\n  containers: []\n",
        &["metadata", "annotations"],
        "spec:\n  containers: []\nmetadata:\n  annotations:\n    linkerd.io/inject: enabled\n",
    );
}

#[test]
fn fills_a_null_value() {
    assert_eq!(
        set(
            "metadata:\n  annotations:\n  name: x\n",
            &["metadata", "annotations"],
            INJECT
        ),
        "metadata:\n  annotations:\n    linkerd.io/inject: enabled\n  name: x\n",
    );
    assert_eq!(
        set("metadata: ~\n", &["metadata", "annotations"], INJECT),
        "metadata: {annotations: {linkerd.io/inject: enabled}}\n"
    );
}

#[test]
fn writes_into_flow_mappings_in_place() {
    assert_eq!(
        set("metadata: {}\n", &["metadata", "annotations"], INJECT),
        "metadata: {annotations: {linkerd.io/inject: enabled}}\n"
    );
    assert_eq!(
        set(
            "metadata: {name: x}\n",
            &["metadata", "annotations"],
            INJECT
        ),
        "metadata: {name: x, annotations: {linkerd.io/inject: enabled}}\n"
    );
    assert_eq!(
        remove(
            "metadata: {name: x, annotations: {linkerd.io/inject: enabled}}\n",
            &["metadata", "annotations"],
            &["linkerd.io/inject"]
        ),
        "metadata: {name: x, annotations: {}}\n"
    );
}

#[test]
fn keeps_json_json() {
    let before = "{\n  \"metadata\": {\n    \"name\": \"x\"\n  }\n}\n";
    let after = set(before, &["metadata", "annotations"], INJECT);
    assert_eq!(
        after,
        "{\n  \"metadata\": {\n    \"name\": \"x\",\n    \"annotations\": {\"linkerd.io/inject\": \"enabled\"}\n  }\n}\n"
    );
    let value: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(
        value["metadata"]["annotations"]["linkerd.io/inject"],
        "enabled"
    );
}

#[test]
fn replaces_a_different_value_and_quotes_what_needs_it() {
    assert_eq!(
        set("a:\n  k: old\n", &["a"], &[("k", "1234")]),
        "a:\n  k: \"1234\"\n"
    );
    assert_eq!(
        set("a:\n  k: \"1234\"\n", &["a"], &[("k", "1234")]),
        "a:\n  k: \"1234\"\n"
    );
}

#[test]
fn inserts_after_block_scalars_without_touching_them() {
    round_trip(
        "annotations:\n  note: |+\n    kept\n\n  other: x\n",
        &["annotations"],
        "annotations:\n  note: |+\n    kept\n\n  other: x\n  linkerd.io/inject: enabled\n",
    );
    round_trip(
        "annotations:\n  note: |\n    last",
        &["annotations"],
        "annotations:\n  note: |\n    last\n  linkerd.io/inject: enabled",
    );
}

#[test]
fn entries_after_a_sequence_dash_line_up() {
    round_trip(
        "items:\n- metadata:\n    name: a\n  spec: {}\n",
        &[],
        "items:\n- metadata:\n    name: a\n  spec: {}\nlinkerd.io/inject: enabled\n",
    );
}

#[test]
fn refuses_aliases_and_merge_keys() {
    let text = "base: &b {x: 1}\nmetadata: *b\n";
    let root = parse_chunk(text, 0, 1).unwrap().remove(0).unwrap();
    let mut editor = Editor::new(text, &root, false);
    let err = editor
        .set(&root, &["metadata", "annotations"], INJECT)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2:11: `metadata` is a YAML alias; expand it before injecting"
    );

    let text = "metadata:\n  <<: {x: 1}\n  name: a\n";
    let root = parse_chunk(text, 0, 1).unwrap().remove(0).unwrap();
    let mut editor = Editor::new(text, &root, false);
    let err = editor
        .set(&root, &["metadata", "annotations"], INJECT)
        .unwrap_err();
    assert!(err.to_string().contains("merge key"), "{err}");
}

#[test]
fn removal_keeps_other_keys_and_comments() {
    assert_eq!(
        remove(
            "m:\n  a: 1\n  # about b\n  linkerd.io/inject: enabled\n  c: 3\n",
            &["m"],
            &["linkerd.io/inject"]
        ),
        "m:\n  a: 1\n  # about b\n  c: 3\n"
    );
}

#[test]
fn pieces_concatenate_to_the_edited_text() {
    let edits = vec![
        Edit {
            range: 0..0,
            text: "<".into(),
        },
        Edit {
            range: 1..2,
            text: "B".into(),
        },
        Edit {
            range: 3..3,
            text: ">".into(),
        },
    ];
    assert_eq!(apply("abc", &edits).collect::<String>(), "<aBc>");
}

#[test]
fn follows_crlf_line_endings() {
    round_trip(
        "metadata:\r\n  name: x\r\n",
        &["metadata", "annotations"],
        "metadata:\r\n  name: x\r\n  annotations:\r\n    linkerd.io/inject: enabled\r\n",
    );
}

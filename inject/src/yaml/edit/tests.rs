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

fn items_edit(text: &str, f: impl FnOnce(&mut Editor<'_>, &Node<'_>)) -> String {
    let root = parse_chunk(text, 0, 1).unwrap().remove(0).unwrap();
    let mut editor = Editor::new(text, &root, root.is_flow());
    f(&mut editor, &root);
    let edits = editor.into_edits();
    apply(text, &edits).collect()
}

fn sidecar() -> serde_json::Value {
    serde_json::json!({"name": "side", "args": ["a", "b"], "env": [{"name": "X", "value": "yes"}]})
}

#[test]
fn prepends_and_appends_block_items_in_the_documents_style() {
    let text = "spec:\n  containers:\n  - name: app\n    image: x\n  volumes:\n    -   name: v\n        emptyDir: {}\n";
    let out = items_edit(text, |e, root| {
        e.insert_items(root, &["spec"], "containers", Position::Start, &[sidecar()])
            .unwrap();
        e.insert_items(
            root,
            &["spec"],
            "volumes",
            Position::End,
            &[serde_json::json!({"name": "w", "emptyDir": {}})],
        )
        .unwrap();
    });
    assert_eq!(
        out,
        "spec:\n  containers:\n  - name: side\n    args:\n    - a\n    - b\n    env:\n    - name: X\n      value: \"yes\"\n  - name: app\n    image: x\n  volumes:\n    -   name: v\n        emptyDir: {}\n    -   name: w\n        emptyDir: {}\n"
    );
    let back = items_edit(&out, |e, root| {
        assert!(e.remove_items(root, &["spec"], "containers", |n| named(n, &["side"])));
        assert!(e.remove_items(root, &["spec"], "volumes", |n| named(n, &["w"])));
    });
    assert_eq!(back, text);
}

#[test]
fn creates_a_missing_sequence_and_removes_it_when_emptied() {
    let text = "spec:\n  containers:\n    - name: app\n";
    let out = items_edit(text, |e, root| {
        e.insert_items(
            root,
            &["spec"],
            "initContainers",
            Position::Start,
            &[serde_json::json!({"name": "init"})],
        )
        .unwrap();
    });
    assert_eq!(
        out,
        "spec:\n  containers:\n    - name: app\n  initContainers:\n    - name: init\n"
    );
    let back = items_edit(&out, |e, root| {
        assert!(e.remove_items(root, &["spec"], "initContainers", |n| named(n, &["init"])));
    });
    assert_eq!(back, text);
}

#[test]
fn flow_and_json_sequences_get_json_items() {
    let text = "{\"spec\": {\"containers\": [{\"name\": \"app\"}]}}";
    let out = items_edit(text, |e, root| {
        e.insert_items(
            root,
            &["spec"],
            "containers",
            Position::Start,
            &[serde_json::json!({"name": "side"})],
        )
        .unwrap();
        e.insert_items(
            root,
            &["spec"],
            "volumes",
            Position::End,
            &[serde_json::json!({"name": "v"})],
        )
        .unwrap();
    });
    assert_eq!(
        out,
        "{\"spec\": {\"containers\": [{\"name\": \"side\"}, {\"name\": \"app\"}], \"volumes\": [{\"name\": \"v\"}]}}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["spec"]["containers"][0]["name"], "side");
    let back = items_edit(&out, |e, root| {
        e.remove_items(root, &["spec"], "containers", |n| named(n, &["side"]));
    });
    assert_eq!(
        back,
        "{\"spec\": {\"containers\": [{\"name\": \"app\"}], \"volumes\": [{\"name\": \"v\"}]}}"
    );
}

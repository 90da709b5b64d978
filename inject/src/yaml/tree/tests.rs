use super::*;

fn root(text: &str) -> Node<'_> {
    parse_chunk(text, 0, 1).unwrap().remove(0).unwrap()
}

fn span<'a>(text: &'a str, node: &Node<'_>) -> &'a str {
    &text[node.start..node.end]
}

#[test]
fn scalars_know_their_text() {
    let text = "a: b\nc: \"d e\"\nf: 'g'\n";
    let doc = root(text);
    assert_eq!(span(text, doc.get("a").unwrap()), "b");
    assert_eq!(span(text, doc.get("c").unwrap()), "\"d e\"");
    assert_eq!(span(text, doc.get("f").unwrap()), "'g'");
}

#[test]
fn non_ascii_text_maps_to_bytes() {
    let text = "é: \"ü\"\nnext: ñ\n";
    let doc = root(text);
    assert_eq!(span(text, doc.get("é").unwrap()), "\"ü\"");
    assert_eq!(span(text, doc.get("next").unwrap()), "ñ");
}

#[test]
fn flow_and_block_collections_are_told_apart() {
    let text = "a: {x: 1}\nb:\n  y: 2\nc: [1]\nd:\n- 1\n";
    let doc = root(text);
    assert!(doc.get("a").unwrap().is_flow());
    assert_eq!(span(text, doc.get("a").unwrap()), "{x: 1}");
    assert!(!doc.get("b").unwrap().is_flow());
    assert_eq!(span(text, doc.get("b").unwrap()), "y: 2");
    assert!(doc.get("c").unwrap().is_flow());
    assert!(!doc.get("d").unwrap().is_flow());
}

#[test]
fn offsets_are_relative_to_the_stream() {
    let text = "---\na: b\n";
    let docs = parse_chunk(&text[4..], 4, 2).unwrap();
    let doc = docs[0].as_ref().unwrap();
    assert_eq!(doc.get("a").unwrap().start, 7);
}

#[test]
fn empty_documents_have_no_root() {
    assert_eq!(parse_chunk("---\n\n", 0, 1).unwrap(), vec![None]);
    assert_eq!(parse_chunk("# only a comment\n", 0, 1).unwrap(), vec![]);
}

#[test]
fn errors_carry_stream_positions() {
    let err = parse_chunk("a: b\n  c: d\n", 100, 10).unwrap_err();
    assert_eq!(err.line, 11);
    assert_eq!(
        err.message,
        "mapping values are not allowed in this context"
    );
}

#[test]
fn paths_follow_mappings() {
    let doc = root("spec:\n  template:\n    metadata:\n      name: x\n");
    assert_eq!(
        doc.path(&["spec", "template", "metadata", "name"])
            .and_then(Node::as_str),
        Some("x")
    );
    assert!(doc.path(&["spec", "nope"]).is_none());
}

/// Nesting deeper than [`MAX_NESTING`] is an error at the node that crosses it, and anything up
/// to the limit parses, converts and drops within a test thread's 2 MiB stack (debug frames).
#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| format!("x:\n  {}a\n", "- ".repeat(depth));
    let err = parse_chunk(&nested(300_000), 0, 1).unwrap_err();
    assert_eq!((err.line, err.col), (2, 3 + 2 * (MAX_NESTING - 1)));
    assert!(err.message.contains("nested more than 512"), "{err}");

    let text = nested(MAX_NESTING - 1);
    let docs = parse_chunk(&text, 0, 1).unwrap();
    let json = crate::yaml::to_json(docs[0].as_ref().unwrap());
    assert!(json["x"].is_array());
    drop(docs);
    drop(json);
}

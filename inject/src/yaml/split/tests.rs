use super::*;

fn pieces(text: &str) -> Vec<(&str, bool)> {
    split(text)
        .into_iter()
        .map(|c| (&text[c.range], c.is_document))
        .collect()
}

#[test]
fn leading_and_trailing_markers_do_not_make_documents() {
    assert_eq!(
        pieces("---\na: 1\n---\n"),
        vec![("---\na: 1\n", true), ("---\n", false)]
    );
}

#[test]
fn text_before_the_first_marker_is_a_document() {
    assert_eq!(
        pieces("a: 1\n---\nb: 2\n"),
        vec![("a: 1\n", true), ("---\nb: 2\n", true)]
    );
}

#[test]
fn blank_documents_are_documents() {
    assert_eq!(
        pieces("---\n\n---\nx: 1\n"),
        vec![("---\n\n", true), ("---\nx: 1\n", true)]
    );
}

#[test]
fn content_on_the_marker_line_counts() {
    assert_eq!(pieces("--- {a: 1}"), vec![("--- {a: 1}", true)]);
    assert_eq!(pieces("--- # note\n"), vec![("--- # note\n", false)]);
}

#[test]
fn dashes_inside_text_do_not_split() {
    assert_eq!(
        pieces("a: ----\nb: '---'\n----: x\n"),
        vec![("a: ----\nb: '---'\n----: x\n", true)]
    );
}

#[test]
fn line_numbers_follow_the_text() {
    let chunks = split("a: 1\nb: 2\n---\nc: 3\n");
    assert_eq!(chunks[0].first_line, 1);
    assert_eq!(chunks[1].first_line, 3);
}

#[test]
fn json_values_are_split_where_they_end() {
    assert_eq!(
        pieces("{\"a\": 1}\n{\"b\": 2}\n"),
        vec![("{\"a\": 1}", true), ("\n{\"b\": 2}\n", true)]
    );
}

#[test]
fn a_yaml_flow_mapping_is_not_json() {
    assert_eq!(pieces("{a: 1}\n"), vec![("{a: 1}\n", true)]);
}

#[test]
fn empty_input_has_no_documents() {
    assert_eq!(pieces(""), vec![("", false)]);
}

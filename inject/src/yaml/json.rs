//! Converting a parsed document to JSON, with the scalar rules kubectl uses.

use std::collections::HashMap;

use saphyr_parser::ScalarStyle;
use serde_json::{Map, Value};

use super::scalar::{resolve_bool, resolve_number};
use super::split::split;
use super::tree::{Node, NodeKind, SyntaxError, parse_chunk};

/// The JSON values of a stream's documents, in order, read as kubectl reads them (see
/// [`to_json`]); empty documents are left out.
pub fn to_json_documents(text: &str) -> Result<Vec<Value>, SyntaxError> {
    let mut docs = Vec::new();
    for chunk in split(text) {
        if !chunk.is_document {
            continue;
        }
        let roots = parse_chunk(
            &text[chunk.range.clone()],
            chunk.range.start,
            chunk.first_line,
        )?;
        docs.extend(roots.iter().flatten().map(to_json).filter(|v| !v.is_null()));
    }
    Ok(docs)
}

/// The JSON value of a document root: plain scalars resolve to null, booleans and numbers under
/// YAML 1.1 rules, aliases expand, and `<<` merge keys merge.
pub fn to_json(root: &Node<'_>) -> Value {
    let mut anchors = HashMap::new();
    convert(root, &mut anchors)
}

fn convert(node: &Node<'_>, anchors: &mut HashMap<usize, Value>) -> Value {
    let value = match &node.kind {
        NodeKind::Scalar { value, style } => {
            if *style != ScalarStyle::Plain || node.tagged {
                Value::String(value.to_string())
            } else if node.is_null() {
                Value::Null
            } else if let Some(b) = resolve_bool(value) {
                Value::Bool(b)
            } else if let Some(n) = resolve_number(value) {
                Value::Number(n)
            } else {
                Value::String(value.to_string())
            }
        }
        NodeKind::Seq { items, .. } => {
            Value::Array(items.iter().map(|item| convert(item, anchors)).collect())
        }
        NodeKind::Map { entries, .. } => {
            let mut map = Map::new();
            let mut merged = Map::new();
            for (key, value) in entries {
                let value = convert(value, anchors);
                if key.as_str() == Some("<<") && !key.tagged {
                    merge_into(&mut merged, value);
                    continue;
                }
                // Keys are kept as written: Kubernetes keys are strings, and reading `y:` or `on:`
                // as a boolean key would only surprise.
                let key = match key.as_str() {
                    Some(s) => s.to_owned(),
                    None => convert(key, anchors).to_string(),
                };
                map.insert(key, value);
            }
            // Explicit keys win over merged ones.
            for (k, v) in merged {
                map.entry(k).or_insert(v);
            }
            Value::Object(map)
        }
        NodeKind::Alias(id) => anchors.get(id).cloned().unwrap_or(Value::Null),
    };
    if node.anchor != 0 {
        anchors.insert(node.anchor, value.clone());
    }
    value
}

fn merge_into(merged: &mut Map<String, Value>, value: Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                merged.entry(k).or_insert(v);
            }
        }
        Value::Array(maps) => maps.into_iter().for_each(|m| merge_into(merged, m)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_chunk;
    use serde_json::json;

    fn convert_text(text: &str) -> Value {
        to_json(parse_chunk(text, 0, 1).unwrap()[0].as_ref().unwrap())
    }

    #[test]
    fn scalars_resolve_like_kubectl() {
        assert_eq!(
            convert_text("a: yes\nb: \"yes\"\nc: 80\nd: '80'\ne: ~\nf: 1.5\ng: !!str 7\nh: web\n"),
            json!({"a": true, "b": "yes", "c": 80, "d": "80", "e": null, "f": 1.5, "g": "7", "h": "web"})
        );
    }

    #[test]
    fn aliases_expand_and_merge_keys_merge() {
        assert_eq!(
            convert_text("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\ncopy: *b\n"),
            json!({"base": {"x": 1, "y": 2}, "use": {"y": 3, "x": 1}, "copy": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn key_order_is_kept() {
        let v = convert_text("z: 1\na: 2\nm: 3\n");
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }
}

//! Converting a parsed document to JSON, with the scalar rules kubectl uses.

use std::collections::HashMap;

use saphyr_parser::ScalarStyle;
use serde_json::{Map, Value};

use super::edit::line_col;
use super::scalar::{resolve_bool, resolve_number};
use super::split::split;
use super::tree::{Node, NodeKind, SyntaxError, parse_chunk};

/// Aliases may add at most this many times the size a document writes out, and always at least
/// [`MIN_ALIAS_BUDGET`]: enough for any manifest that reuses a block, while a few hundred bytes of
/// nested aliases (a "billion laughs") cannot expand into gigabytes. Size counts nodes and the
/// bytes of scalars and keys, so that a large scalar repeated by aliases costs what it weighs.
pub const ALIAS_EXPANSION_RATIO: usize = 10;
/// The smallest alias budget of a document, in nodes plus scalar and key bytes.
pub const MIN_ALIAS_BUDGET: usize = 100_000;

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
        for root in roots.iter().flatten() {
            let value = to_json(text, root)?;
            if !value.is_null() {
                docs.push(value);
            }
        }
    }
    Ok(docs)
}

/// The JSON value of a document root: plain scalars resolve to null, booleans and numbers under
/// YAML 1.1 rules, aliases expand, and `<<` merge keys merge. `text` is the stream the root's
/// offsets refer to, for the position of an error. Refused: aliases that would expand past the
/// document's budget (see [`ALIAS_EXPANSION_RATIO`]), and mapping or sequence keys, which JSON
/// cannot hold and kubectl refuses too (written as JSON text they nest escapes, so a few dozen
/// bytes of `? ? ? …` once became gigabytes).
pub fn to_json(text: &str, root: &Node<'_>) -> Result<Value, SyntaxError> {
    let mut converter = Converter {
        anchors: HashMap::new(),
        written: 0,
        expanded: 0,
    };
    converter.convert(root).map_err(|(offset, refusal)| {
        let (line, col) = line_col(text, offset.min(text.len()));
        let message = match refusal {
            Refusal::AliasBomb => format!(
                "aliases expand to more than {ALIAS_EXPANSION_RATIO} times the document's own \
                 size (at least {MIN_ALIAS_BUDGET} nodes and bytes); refusing a possible alias bomb"
            ),
            Refusal::CollectionKey => {
                "a mapping key must be a scalar: JSON (and kubectl) has no mapping or sequence keys"
                    .to_owned()
            }
        };
        SyntaxError { line, col, message }
    })
}

/// Why a document has no JSON value, at a byte offset.
enum Refusal {
    AliasBomb,
    CollectionKey,
}

struct Converter {
    /// Each anchored value and its size.
    anchors: HashMap<usize, (Value, usize)>,
    /// The size (nodes plus scalar and key bytes) written out in the document, and the size
    /// added by expanding aliases so far.
    written: usize,
    expanded: usize,
}

impl Converter {
    /// Converts `node`; a refusal comes with the offset of the node refused.
    fn convert(&mut self, node: &Node<'_>) -> Result<Value, (usize, Refusal)> {
        let before = self.written + self.expanded;
        let value = self.value(node)?;
        if node.anchor != 0 {
            let size = self.written + self.expanded - before;
            self.anchors.insert(node.anchor, (value.clone(), size));
        }
        Ok(value)
    }

    fn value(&mut self, node: &Node<'_>) -> Result<Value, (usize, Refusal)> {
        if let NodeKind::Alias(id) = &node.kind {
            let Some((value, size)) = self.anchors.get(id) else {
                return Ok(Value::Null);
            };
            self.expanded = self.expanded.saturating_add(*size);
            let budget = MIN_ALIAS_BUDGET.max(self.written.saturating_mul(ALIAS_EXPANSION_RATIO));
            if self.expanded > budget {
                return Err((node.start, Refusal::AliasBomb));
            }
            return Ok(value.clone());
        }
        self.written += 1;
        Ok(match &node.kind {
            NodeKind::Scalar { value, style } => {
                self.written += value.len();
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
            NodeKind::Seq { items, .. } => Value::Array(
                items
                    .iter()
                    .map(|item| self.convert(item))
                    .collect::<Result<_, _>>()?,
            ),
            NodeKind::Map { entries, .. } => {
                let mut map = Map::new();
                let mut merged = Map::new();
                for (key, value) in entries {
                    let value = self.convert(value)?;
                    if key.as_str() == Some("<<") && !key.tagged {
                        merge_into(&mut merged, value);
                        continue;
                    }
                    // Keys are kept as written: Kubernetes keys are strings, and reading `y:` or `on:`
                    // as a boolean key would only surprise.
                    let key = match key.as_str() {
                        // Keys are copied with their maps, so they weigh as scalars do.
                        Some(s) => {
                            self.written += s.len();
                            s.to_owned()
                        }
                        // An alias key is its scalar's JSON text, as kubectl writes such keys;
                        // its copy counts against the alias budget.
                        None => match self.convert(key)? {
                            Value::String(s) => s,
                            Value::Array(_) | Value::Object(_) => {
                                return Err((key.start, Refusal::CollectionKey));
                            }
                            scalar => scalar.to_string(),
                        },
                    };
                    map.insert(key, value);
                }
                // Explicit keys win over merged ones.
                for (k, v) in merged {
                    map.entry(k).or_insert(v);
                }
                Value::Object(map)
            }
            NodeKind::Alias(_) => Value::Null,
        })
    }
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
        to_json(text, parse_chunk(text, 0, 1).unwrap()[0].as_ref().unwrap()).unwrap()
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

    /// A few hundred bytes of nested aliases are refused at the alias that crosses the budget;
    /// modest reuse expands.
    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let root = parse_chunk(&bomb, 0, 1).unwrap().remove(0).unwrap();
        let err = to_json(&bomb, &root).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{err}");
        assert_eq!(err.line, 5, "{err}");

        let reuse =
            "env: &env [{name: A, value: '1'}, {name: B, value: '2'}]\nx: *env\ny: *env\nz: *env\n";
        assert_eq!(convert_text(reuse)["z"][1]["name"], "B");

        // A large scalar weighs its bytes: ten thousand copies of 100 kB are refused.
        let big = format!(
            "a: &a {}\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
            "s".repeat(100_000)
        );
        let root = parse_chunk(&big, 0, 1).unwrap().remove(0).unwrap();
        let err = to_json(&big, &root).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{err}");
        assert_eq!(err.line, 3, "{err}");
    }

    /// Nested complex keys once doubled their escapes at every level: 22 `? ` became 8 MB.
    #[test]
    fn collection_keys_are_refused() {
        for text in [
            "? [a, b]\n: c\n",
            "? {a: b}\n: c\n",
            &format!("{}x\n", "? ".repeat(40)),
            "a: &k [x]\n? *k\n: y\n",
        ] {
            let root = parse_chunk(text, 0, 1).unwrap().remove(0).unwrap();
            let err = to_json(text, &root).unwrap_err();
            assert!(err.message.contains("must be a scalar"), "{text}: {err}");
        }
        assert_eq!(
            convert_text("a: &k key\nb: &n 7\n*k : 1\n*n : 2\n"),
            json!({"a": "key", "b": 7, "key": 1, "7": 2})
        );
    }

    #[test]
    fn key_order_is_kept() {
        let v = convert_text("z: 1\na: 2\nm: 3\n");
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }
}

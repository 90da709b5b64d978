//! Editing sequences: adding and removing items, for the containers and volumes of manual injection.

use serde_json::Value;

use super::{Edit, EditError, Editor, ErrorKind, line_start};
use crate::yaml::tree::{Node, NodeKind};

/// Where new items go in a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Start,
    End,
}

impl Editor<'_> {
    /// Inserts `items` at the start or end of the sequence under `key` in the mapping at `path`
    /// under `map`, creating the key if it is missing or null.
    pub fn insert_items(
        &mut self,
        map: &Node<'_>,
        path: &[&str],
        key: &str,
        at: Position,
        items: &[Value],
    ) -> Result<(), EditError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut cur = map;
        for seg in path {
            match cur.get(seg) {
                Some(next) if next.is_map() => cur = next,
                Some(other) => return Err(self.error_at(other, seg, ErrorKind::NotAMap)),
                None => return Err(self.error_at(cur, seg, ErrorKind::NotAMap)),
            }
        }
        match cur.entry(key) {
            None => {
                self.check_merge(cur, key)?;
                self.insert_sequence_entry(cur, key, items);
                Ok(())
            }
            Some((k, v)) if v.is_null() && !cur.is_flow() && v.start == v.end => {
                let indent = self.indent_of(k);
                let dash = format!("{indent}{}", " ".repeat(self.seq_offset));
                let text = self.block_items(items, &dash, 2);
                let at = self.after(k);
                self.insert_line(at, text);
                Ok(())
            }
            Some((_, v)) if v.is_null() => {
                self.edits.push(Edit {
                    range: v.start..v.end,
                    text: self.flow_items(items, true),
                });
                Ok(())
            }
            Some((_, seq)) => match &seq.kind {
                NodeKind::Seq {
                    items: existing,
                    flow: false,
                } => {
                    let Some(first) = existing.first() else {
                        return Ok(());
                    };
                    let (dash, offset) = self.dash_of(first);
                    let text = self.block_items(items, &dash, offset);
                    match at {
                        Position::Start => self.insert(line_start(self.text, first.start), text),
                        Position::End => {
                            let end = existing.last().map_or(seq.end, |l| self.after(l));
                            self.insert_line(end, text);
                        }
                    }
                    Ok(())
                }
                NodeKind::Seq {
                    items: existing,
                    flow: true,
                } => {
                    let rendered = self.flow_items(items, false);
                    let open = seq.start + self.text[seq.start..seq.end].find('[').unwrap_or(0);
                    let close = seq.end.saturating_sub(1);
                    let text = match (at, existing.is_empty()) {
                        (_, true) => (open + 1, rendered),
                        (Position::Start, false) => (open + 1, format!("{rendered}, ")),
                        (Position::End, false) => (close, format!(", {rendered}")),
                    };
                    self.insert(text.0, text.1);
                    Ok(())
                }
                _ => Err(self.error_at(seq, key, ErrorKind::NotASequence)),
            },
        }
    }

    /// Removes the items of the sequence under `key` in the mapping at `path` for which `doomed`
    /// holds. A block sequence left empty is removed with its key. Returns whether anything changed.
    pub fn remove_items(
        &mut self,
        map: &Node<'_>,
        path: &[&str],
        key: &str,
        doomed: impl Fn(&Node<'_>) -> bool,
    ) -> bool {
        let Some(cur) = map.path(path) else {
            return false;
        };
        let Some(index) = cur
            .entries()
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))
        else {
            return false;
        };
        let seq = &cur.entries()[index].1;
        let items = seq.items();
        let gone: Vec<usize> = (0..items.len()).filter(|&i| doomed(&items[i])).collect();
        if gone.is_empty() {
            return false;
        }
        if gone.len() == items.len() && !seq.is_flow() {
            self.remove_entries(cur, &[index]);
            return true;
        }
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for i in gone {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => runs.push((i, i)),
            }
        }
        for (i, j) in runs {
            let range = if seq.is_flow() {
                if i > 0 {
                    items[i - 1].end..items[j].end
                } else if j + 1 < items.len() {
                    items[i].start..items[j + 1].start
                } else {
                    items[i].start..items[j].end
                }
            } else {
                line_start(self.text, items[i].start)..self.after(&items[j])
            };
            self.edits.push(Edit {
                range,
                text: String::new(),
            });
        }
        true
    }

    fn insert_sequence_entry(&mut self, map: &Node<'_>, key: &str, items: &[Value]) {
        if map.is_flow() {
            let value = super::NewValue::Json(Value::Array(items.to_vec()));
            self.insert_entries(map, &[(key.to_owned(), value)]);
            return;
        }
        let Some(((first_key, _), (_, last_value))) =
            map.entries().first().zip(map.entries().last())
        else {
            return;
        };
        let indent = self.indent_of(first_key);
        let dash = format!("{indent}{}", " ".repeat(self.seq_offset));
        let mut text = format!("{indent}{}:{}", self.key(key), self.newline);
        text.push_str(&self.block_items(items, &dash, 2));
        let at = self.after(last_value);
        self.insert_line(at, text);
    }

    /// The white space before an item's dash, and the distance from the dash to the item's text.
    fn dash_of(&self, item: &Node<'_>) -> (String, usize) {
        let start = line_start(self.text, item.start);
        let prefix = &self.text[start..item.start];
        match prefix.rfind('-') {
            Some(dash) if prefix[..dash].bytes().all(|b| b == b' ') => {
                (prefix[..dash].to_owned(), prefix.len() - dash)
            }
            _ => (" ".repeat(prefix.chars().count().saturating_sub(2)), 2),
        }
    }

    /// Items as block sequence lines: `dash` before each `-`, the item's text `offset` columns
    /// after the dash.
    fn block_items(&self, items: &[Value], dash: &str, offset: usize) -> String {
        let inner = format!("{dash}{}", " ".repeat(offset));
        let mut out = String::new();
        for item in items {
            let yaml = self.render_block(item);
            for (i, line) in yaml.lines().enumerate() {
                if i == 0 {
                    out.push_str(dash);
                    out.push('-');
                    out.push_str(&" ".repeat(offset.saturating_sub(1)));
                } else if !line.is_empty() {
                    out.push_str(&inner);
                }
                out.push_str(line);
                out.push_str(self.newline);
            }
        }
        out
    }

    /// A value as block YAML in the document's style, quoting what kubectl could misread.
    pub(super) fn render_block(&self, value: &Value) -> String {
        let mut options = serde_saphyr::SerializerOptions::default();
        options.indent_step = self.step.clamp(1, 64);
        options.compact_list_indent = self.seq_offset == 0;
        serde_saphyr::to_string_with_options(value, options).unwrap_or_default()
    }

    /// Items as a flow (JSON) sequence body, or with brackets when `bracketed`.
    fn flow_items(&self, items: &[Value], bracketed: bool) -> String {
        let body: Vec<String> = items.iter().map(super::json_inline).collect();
        let body = body.join(", ");
        if bracketed { format!("[{body}]") } else { body }
    }
}

/// Whether a node is a mapping whose `name` is one of `names`.
pub fn named(node: &Node<'_>, names: &[&str]) -> bool {
    node.get("name")
        .and_then(Node::as_str)
        .is_some_and(|n| names.contains(&n))
}

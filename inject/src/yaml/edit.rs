//! Text edits computed from a span tree.
//!
//! Every change to a manifest is an [`Edit`]: replace a byte range of the input with new text.
//! Insertions have an empty range. The [`Editor`] works out where new lines go and how they are
//! indented, so that block YAML gains whole lines and nothing else changes.

use std::ops::Range;

use super::scalar;
use super::tree::{Node, NodeKind};

mod seq;

pub use seq::{Position, named};

/// Replace `range` of the input with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// A value to write: a string, a mapping of them, or any JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    Str(String),
    Map(Vec<(String, NewValue)>),
    Json(serde_json::Value),
}

/// Why an edit cannot be made without changing what the document means.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The edit would go through an alias, which would change every node sharing its anchor.
    #[error("line {line}:{col}: `{key}` is a YAML alias; expand it before injecting")]
    Alias {
        key: String,
        line: usize,
        col: usize,
    },
    /// A key that must hold a mapping holds something else.
    #[error("line {line}:{col}: `{key}` must be a mapping")]
    NotAMap {
        key: String,
        line: usize,
        col: usize,
    },
    /// A key that must hold a string holds a collection.
    #[error("line {line}:{col}: `{key}` must be a string")]
    NotAString {
        key: String,
        line: usize,
        col: usize,
    },
    /// A key that must hold a sequence holds something else.
    #[error("line {line}:{col}: `{key}` must be a list")]
    NotASequence {
        key: String,
        line: usize,
        col: usize,
    },
    /// A missing key might come from a `<<` merge key, so adding it could hide merged values.
    #[error("line {line}:{col}: the mapping uses a YAML merge key (<<); write `{key}` out in full")]
    MergeKey {
        key: String,
        line: usize,
        col: usize,
    },
}

/// Sorted, non-overlapping edits to one text, stored compactly: all replacement texts share one
/// buffer, so a run over a large stream keeps a few large allocations rather than one per edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditList {
    /// (range of the input to replace, range of `inserted` to put there)
    ranges: Vec<(Range<usize>, Range<usize>)>,
    inserted: String,
}

impl EditList {
    /// Appends edits that come after every edit already in the list.
    pub fn extend(&mut self, edits: impl IntoIterator<Item = Edit>) {
        for edit in edits {
            let start = self.inserted.len();
            self.inserted.push_str(&edit.text);
            self.ranges.push((edit.range, start..self.inserted.len()));
        }
    }

    /// Appends another list whose edits all come after this one's.
    pub fn append(&mut self, other: EditList) {
        let base = self.inserted.len();
        self.inserted.push_str(&other.inserted);
        self.ranges.extend(
            other
                .ranges
                .into_iter()
                .map(|(range, text)| (range, text.start + base..text.end + base)),
        );
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The edited text, in pieces.
    pub fn pieces<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        pieces(
            text,
            self.ranges
                .iter()
                .map(|(range, new)| (range.clone(), &self.inserted[new.clone()])),
        )
    }
}

/// Applies sorted, non-overlapping edits to `text`, yielding the output in pieces.
pub fn apply<'a>(text: &'a str, edits: &'a [Edit]) -> impl Iterator<Item = &'a str> + 'a {
    pieces(
        text,
        edits.iter().map(|e| (e.range.clone(), e.text.as_str())),
    )
}

fn pieces<'a>(
    text: &'a str,
    edits: impl Iterator<Item = (Range<usize>, &'a str)> + 'a,
) -> impl Iterator<Item = &'a str> + 'a {
    let mut pos = 0;
    let mut edits = edits;
    let mut pending: Option<&'a str> = None;
    std::iter::from_fn(move || {
        if let Some(p) = pending.take() {
            return Some(p);
        }
        match edits.next() {
            Some((range, new)) => {
                let before = &text[pos..range.start];
                pos = range.end;
                pending = Some(new);
                Some(before)
            }
            None if pos < text.len() => {
                let rest = &text[pos..];
                pos = text.len();
                Some(rest)
            }
            None => None,
        }
    })
    .filter(|s| !s.is_empty())
}

/// Collects edits against one stream of text.
#[derive(Debug)]
pub struct Editor<'t> {
    text: &'t str,
    json: bool,
    step: usize,
    /// The document's line ending, `\n` or `\r\n`, which new lines follow.
    newline: &'static str,
    /// How far the dash of a block sequence item sits right of its key: 0 (`key:\n- a`) or more.
    seq_offset: usize,
    edits: Vec<Edit>,
}

impl<'t> Editor<'t> {
    /// The whole stream the document's offsets refer to.
    pub fn text(&self) -> &'t str {
        self.text
    }

    /// An editor for a document of `text` rooted at `root`. `json` makes new keys and values JSON
    /// strings; the indentation step for new nested blocks is taken from the document itself.
    pub fn new(text: &'t str, root: &Node<'_>, json: bool) -> Self {
        let line_end =
            memchr::memchr(b'\n', &text.as_bytes()[root.start..]).map(|i| root.start + i);
        let crlf = line_end.is_some_and(|i| i > 0 && text.as_bytes()[i - 1] == b'\r');
        Editor {
            text,
            json,
            step: detect_step(text, root).unwrap_or(2),
            newline: if crlf { "\r\n" } else { "\n" },
            seq_offset: detect_seq_offset(text, root).unwrap_or(0),
            edits: Vec::new(),
        }
    }

    /// The edits so far, sorted by position.
    pub fn into_edits(mut self) -> Vec<Edit> {
        // Insertions at one spot go innermost first: lines added to a nested mapping belong
        // before lines added to the mapping around it. At equal indentation, items of a sequence
        // ending there go before a new sibling key.
        self.edits.sort_by_key(|e| {
            let text = e.text.trim_start_matches(['\r', '\n']);
            let content = text.trim_start_matches(' ');
            let indent = text.len() - content.len();
            (
                e.range.start,
                e.range.end,
                std::cmp::Reverse(indent),
                !content.starts_with('-'),
            )
        });
        self.edits
    }

    /// Sets string `values` in the mapping at `path` under `map`, creating the mappings on the way
    /// when they are missing. Keys already holding the same string are left alone. Returns whether
    /// anything changed.
    pub fn set(
        &mut self,
        map: &Node<'_>,
        path: &[&str],
        values: &[(&str, &str)],
    ) -> Result<bool, EditError> {
        self.set_paths(map, &[(path, values)])
    }

    /// Like [`Editor::set`] for several paths at once, so that mappings missing on more than one
    /// path (say `metadata` for both `metadata.labels` and `metadata.annotations`) are created once.
    pub fn set_paths(&mut self, map: &Node<'_>, groups: &[Group<'_>]) -> Result<bool, EditError> {
        let mut missing: Vec<(String, NewValue)> = Vec::new();
        let mut changed = false;
        for (_, values) in groups.iter().filter(|(p, _)| p.is_empty()) {
            for (key, value) in values.iter() {
                match map.get(key) {
                    Some(old)
                        if old.as_str() == Some(value)
                            && !matches!(old.kind, NodeKind::Alias(_)) => {}
                    Some(old) if old.as_str().is_some() => {
                        self.replace_scalar(old, value);
                        changed = true;
                    }
                    Some(old) => return Err(self.error_at(old, key, ErrorKind::NotAString)),
                    None if missing.iter().any(|(k, _)| k == key) => {}
                    None => {
                        self.check_merge(map, key)?;
                        missing.push((key.to_string(), NewValue::Str(value.to_string())));
                    }
                }
            }
        }
        for seg in first_segments(groups) {
            let sub = sub_groups(groups, seg);
            match map.entry(seg) {
                Some((key, value)) => match &value.kind {
                    NodeKind::Map { .. } => changed |= self.set_paths(value, &sub)?,
                    NodeKind::Alias(_) => return Err(self.error_at(value, seg, ErrorKind::Alias)),
                    _ if value.is_null() => {
                        self.fill_null(map, key, value, &nest(&sub));
                        changed = true;
                    }
                    _ => return Err(self.error_at(value, seg, ErrorKind::NotAMap)),
                },
                None => {
                    self.check_merge(map, seg)?;
                    missing.push((seg.to_string(), nest(&sub)));
                }
            }
        }
        if !missing.is_empty() {
            self.insert_entries(map, &missing);
            changed = true;
        }
        Ok(changed)
    }

    /// Removes `keys` from the mapping at `path` under `map`. A block mapping left empty is removed
    /// too, and so on up the path (but never `map` itself), so that removing what [`Editor::set`]
    /// added gives back the original text. Returns whether anything changed.
    pub fn remove(&mut self, map: &Node<'_>, path: &[&str], keys: &[&str]) -> bool {
        self.remove_paths(map, &[(path, keys)])
    }

    /// Like [`Editor::remove`] for several paths at once, so that a mapping emptied by removals
    /// under more than one of its keys is itself removed.
    pub fn remove_paths(&mut self, map: &Node<'_>, removals: &[(&[&str], &[&str])]) -> bool {
        let plan = plan_removal(map, removals);
        if plan.is_noop() {
            return false;
        }
        self.execute(map, &plan);
        true
    }

    fn execute(&mut self, node: &Node<'_>, plan: &Removal) {
        if !plan.doomed.is_empty() {
            self.remove_entries(node, &plan.doomed);
        }
        for (index, child) in &plan.children {
            self.execute(&node.entries()[*index].1, child);
        }
    }

    fn replace_scalar(&mut self, old: &Node<'_>, value: &str) {
        let mut text = scalar::format(value, self.json);
        let end = if old.is_block_scalar() && old.end < self.text.len() {
            text.push_str(self.newline);
            line_start(self.text, old.end)
        } else {
            old.end
        };
        self.edits.push(Edit {
            range: old.start..end,
            text,
        });
    }

    /// Gives a null value (`key:`, `key: ~`) the mapping `value`.
    fn fill_null(&mut self, map: &Node<'_>, key: &Node<'_>, null: &Node<'_>, value: &NewValue) {
        if !map.is_flow() && null.start == null.end {
            let NewValue::Map(children) = value else {
                return;
            };
            let indent = format!("{}{}", self.indent_of(key), " ".repeat(self.step));
            let at = self.after(key);
            let text = self.block_lines(children, &indent);
            self.insert_line(at, text);
        } else {
            let flow = self.flow_value(value);
            let text = if null.start == null.end {
                format!(" {flow}")
            } else {
                flow
            };
            self.edits.push(Edit {
                range: null.start..null.end,
                text,
            });
        }
    }

    fn insert_entries(&mut self, map: &Node<'_>, entries: &[(String, NewValue)]) {
        if map.is_flow() {
            let rendered: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", self.key(k), self.flow_value(v)))
                .collect();
            let close = map.end.saturating_sub(1);
            match map.entries().last() {
                None => self.insert(close, rendered.join(", ")),
                Some((last_key, last_value)) => {
                    if self.text[last_value.end..close].contains('\n') {
                        // One entry per line, each value laid out over lines like the document.
                        let indent = self.indent_of(last_key);
                        let sep = format!(",{}{indent}", self.newline);
                        let rendered: Vec<String> = entries
                            .iter()
                            .map(|(k, v)| {
                                format!("{}: {}", self.key(k), self.flow_lines(v, &indent))
                            })
                            .collect();
                        self.insert(last_value.end, format!("{sep}{}", rendered.join(&sep)));
                    } else {
                        self.insert(last_value.end, format!(", {}", rendered.join(", ")));
                    }
                }
            }
            return;
        }
        let Some(((first_key, _), (_, last_value))) =
            map.entries().first().zip(map.entries().last())
        else {
            return;
        };
        let indent = self.indent_of(first_key);
        let at = self.after(last_value);
        let text = self.block_lines(entries, &indent);
        self.insert_line(at, text);
    }

    fn remove_entries(&mut self, map: &Node<'_>, doomed: &[usize]) {
        let entries = map.entries();
        let n = entries.len();
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &i in doomed {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => runs.push((i, i)),
            }
        }
        for (i, j) in runs {
            let (first_key, _) = &entries[i];
            let (_, last_value) = &entries[j];
            let range = if map.is_flow() {
                if i > 0 {
                    entries[i - 1].1.end..last_value.end
                } else if j + 1 < n {
                    first_key.start..entries[j + 1].0.start
                } else {
                    first_key.start..last_value.end
                }
            } else if self.at_line_start(first_key) {
                let mut start = line_start(self.text, first_key.start);
                let end = self.after(last_value);
                if end == self.text.len() && !self.text.ends_with('\n') {
                    // The last line has no newline: take the one before it instead.
                    start = start.saturating_sub(1);
                }
                start..end
            } else if j + 1 < n {
                first_key.start..entries[j + 1].0.start
            } else {
                self.edits.push(Edit {
                    range: first_key.start..self.after(last_value),
                    text: format!("{{}}{}", self.newline),
                });
                continue;
            };
            self.edits.push(Edit {
                range,
                text: String::new(),
            });
        }
    }

    fn block_lines(&self, entries: &[(String, NewValue)], indent: &str) -> String {
        let mut out = String::new();
        for (key, value) in entries {
            match value {
                NewValue::Str(s) => {
                    out.push_str(&format!(
                        "{indent}{}: {}{}",
                        self.key(key),
                        scalar::format(s, self.json),
                        self.newline
                    ));
                }
                NewValue::Map(children) => {
                    out.push_str(&format!("{indent}{}:{}", self.key(key), self.newline));
                    let deeper = format!("{indent}{}", " ".repeat(self.step));
                    out.push_str(&self.block_lines(children, &deeper));
                }
                NewValue::Json(value) => {
                    out.push_str(&format!("{indent}{}:{}", self.key(key), self.newline));
                    let deeper = format!("{indent}{}", " ".repeat(self.step));
                    for line in self.render_block(value).lines() {
                        out.push_str(&deeper);
                        out.push_str(line);
                        out.push_str(self.newline);
                    }
                }
            }
        }
        out
    }

    fn flow_value(&self, value: &NewValue) -> String {
        match value {
            NewValue::Str(s) => scalar::format(s, self.json),
            NewValue::Map(children) => {
                let inner: Vec<String> = children
                    .iter()
                    .map(|(k, v)| format!("{}: {}", self.key(k), self.flow_value(v)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            NewValue::Json(value) => json_inline(value),
        }
    }

    /// A value for a flow collection laid out over lines, continuing at `indent`.
    fn flow_lines(&self, value: &NewValue, indent: &str) -> String {
        match value {
            NewValue::Json(value) => json_lines(value, indent, self.step, self.newline),
            other => self.flow_value(other),
        }
    }

    fn key(&self, key: &str) -> String {
        scalar::format(key, self.json)
    }

    fn insert(&mut self, at: usize, text: String) {
        self.edits.push(Edit {
            range: at..at,
            text,
        });
    }

    /// Inserts whole lines at `at`, which is a line start or the end of the text.
    fn insert_line(&mut self, at: usize, mut text: String) {
        if at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n') {
            // The text ends without a newline: keep it that way, so removal can restore it.
            text.insert_str(0, self.newline);
            text.truncate(text.len() - self.newline.len());
        }
        self.insert(at, text);
    }

    /// Where a line following `node` begins: after the end of its last line.
    fn after(&self, node: &Node<'_>) -> usize {
        match &node.kind {
            NodeKind::Map {
                entries,
                flow: false,
            } if !entries.is_empty() => entries.last().map_or(node.end, |(_, v)| self.after(v)),
            NodeKind::Seq { items, flow: false } if !items.is_empty() => {
                items.last().map_or(node.end, |v| self.after(v))
            }
            _ if node.is_block_scalar() => {
                if node.end >= self.text.len() {
                    self.text.len()
                } else {
                    line_start(self.text, node.end)
                }
            }
            _ => memchr::memchr(b'\n', &self.text.as_bytes()[node.end..])
                .map_or(self.text.len(), |i| node.end + i + 1),
        }
    }

    /// The white space that puts a new line level with `node`.
    fn indent_of(&self, node: &Node<'_>) -> String {
        let prefix = &self.text[line_start(self.text, node.start)..node.start];
        if prefix.bytes().all(|b| b == b' ') {
            prefix.to_owned()
        } else {
            " ".repeat(prefix.chars().count())
        }
    }

    fn at_line_start(&self, node: &Node<'_>) -> bool {
        self.text[line_start(self.text, node.start)..node.start]
            .bytes()
            .all(|b| b == b' ')
    }

    fn check_merge(&self, map: &Node<'_>, key: &str) -> Result<(), EditError> {
        match map.entry("<<") {
            Some((merge, _)) => Err(self.error_at(merge, key, ErrorKind::MergeKey)),
            None => Ok(()),
        }
    }

    fn error_at(&self, node: &Node<'_>, key: &str, kind: ErrorKind) -> EditError {
        let (line, col) = line_col(self.text, node.start);
        let key = key.to_owned();
        match kind {
            ErrorKind::Alias => EditError::Alias { key, line, col },
            ErrorKind::NotAMap => EditError::NotAMap { key, line, col },
            ErrorKind::NotAString => EditError::NotAString { key, line, col },
            ErrorKind::MergeKey => EditError::MergeKey { key, line, col },
            ErrorKind::NotASequence => EditError::NotASequence { key, line, col },
        }
    }
}

/// Which entries of a mapping to remove, and what to remove inside the entries that stay.
#[derive(Debug, Default)]
struct Removal {
    doomed: Vec<usize>,
    children: Vec<(usize, Removal)>,
    /// Every entry goes, so the mapping itself can go.
    empties: bool,
}

impl Removal {
    fn is_noop(&self) -> bool {
        self.doomed.is_empty() && self.children.is_empty()
    }
}

fn plan_removal(node: &Node<'_>, removals: &[(&[&str], &[&str])]) -> Removal {
    let entries = node.entries();
    let mut doomed: Vec<usize> = Vec::new();
    for (_, keys) in removals.iter().filter(|(p, _)| p.is_empty()) {
        for (i, (k, _)) in entries.iter().enumerate() {
            if k.as_str().is_some_and(|k| keys.contains(&k)) && !doomed.contains(&i) {
                doomed.push(i);
            }
        }
    }
    let mut children = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (path, _) in removals {
        let Some(seg) = path.first() else { continue };
        if seen.contains(seg) {
            continue;
        }
        seen.push(seg);
        let Some(i) = entries
            .iter()
            .position(|(k, v)| k.as_str() == Some(seg) && v.is_map())
        else {
            continue;
        };
        if doomed.contains(&i) {
            continue;
        }
        let sub: Vec<(&[&str], &[&str])> = removals
            .iter()
            .filter(|(p, _)| p.first() == Some(seg))
            .map(|(p, k)| (&p[1..], *k))
            .collect();
        let child = plan_removal(&entries[i].1, &sub);
        if child.empties && !entries[i].1.is_flow() {
            doomed.push(i);
        } else if !child.is_noop() {
            children.push((i, child));
        }
    }
    doomed.sort_unstable();
    let empties = !entries.is_empty() && doomed.len() == entries.len();
    Removal {
        doomed,
        children,
        empties,
    }
}

enum ErrorKind {
    Alias,
    NotAMap,
    NotAString,
    MergeKey,
    NotASequence,
}

/// JSON on one line with a space after each `:` and `,`, which YAML flow style reads too.
pub fn json_inline(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(json_inline).collect();
            format!("[{}]", inner.join(", "))
        }
        serde_json::Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        serde_json::Value::String(k.clone()),
                        json_inline(v)
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// Pretty JSON whose lines after the first continue at `indent`, nesting by `step` spaces.
fn json_lines(value: &serde_json::Value, indent: &str, step: usize, newline: &str) -> String {
    let pad = " ".repeat(step.max(1));
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return json_inline(value);
    }
    let text = String::from_utf8(out).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_owned()
            } else {
                format!("{indent}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join(newline)
}

/// A path of mapping keys and the string values to set in the mapping it leads to.
pub type Group<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// The distinct first keys of the groups' paths, in order.
fn first_segments<'a>(groups: &[Group<'a>]) -> Vec<&'a str> {
    let mut segs: Vec<&str> = Vec::new();
    for (path, _) in groups {
        if let Some(seg) = path.first()
            && !segs.contains(seg)
        {
            segs.push(seg);
        }
    }
    segs
}

/// The groups under `seg`, with `seg` taken off their paths.
fn sub_groups<'a>(groups: &[Group<'a>], seg: &str) -> Vec<Group<'a>> {
    groups
        .iter()
        .filter(|(p, _)| p.first() == Some(&seg))
        .map(|(p, v)| (&p[1..], *v))
        .collect()
}

/// Groups as one new mapping: {a: {b: {k: v}}} for (["a", "b"], [("k", "v")]).
fn nest(groups: &[Group<'_>]) -> NewValue {
    let mut entries: Vec<(String, NewValue)> = Vec::new();
    for (_, values) in groups.iter().filter(|(p, _)| p.is_empty()) {
        for (k, v) in values.iter() {
            if !entries.iter().any(|(e, _)| e == k) {
                entries.push((k.to_string(), NewValue::Str(v.to_string())));
            }
        }
    }
    for seg in first_segments(groups) {
        entries.push((seg.to_string(), nest(&sub_groups(groups, seg))));
    }
    NewValue::Map(entries)
}

/// The indentation step of a document: how far a nested block mapping sits inside its parent.
fn detect_step(text: &str, node: &Node<'_>) -> Option<usize> {
    let NodeKind::Map {
        entries,
        flow: false,
    } = &node.kind
    else {
        return None;
    };
    entries.iter().find_map(|(key, value)| match &value.kind {
        NodeKind::Map {
            entries: inner,
            flow: false,
        } => {
            let (child, _) = inner.first()?;
            let col = |n: &Node<'_>| text[line_start(text, n.start)..n.start].chars().count();
            let (parent_col, child_col) = (col(key), col(child));
            (child_col > parent_col)
                .then(|| child_col - parent_col)
                .or_else(|| detect_step(text, value))
        }
        _ => None,
    })
}

/// How far right of its key a document puts the dashes of a block sequence.
fn detect_seq_offset(text: &str, node: &Node<'_>) -> Option<usize> {
    match &node.kind {
        NodeKind::Map {
            entries,
            flow: false,
        } => entries.iter().find_map(|(key, value)| match &value.kind {
            NodeKind::Seq { items, flow: false } => {
                let first = items.first()?;
                let start = line_start(text, first.start);
                let dash = text[start..first.start].rfind('-')? + start;
                let key_col = key.start - line_start(text, key.start);
                (line_start(text, dash) == start && dash >= start + key_col)
                    .then(|| dash - start - key_col)
                    .or_else(|| detect_seq_offset(text, value))
            }
            _ => detect_seq_offset(text, value),
        }),
        NodeKind::Seq { items, flow: false } => {
            items.iter().find_map(|i| detect_seq_offset(text, i))
        }
        _ => None,
    }
}

/// The byte offset of the start of the line holding `offset`.
pub fn line_start(text: &str, offset: usize) -> usize {
    memchr::memrchr(b'\n', &text.as_bytes()[..offset]).map_or(0, |i| i + 1)
}

/// The 1-based line and column (in characters) of `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let start = line_start(text, offset);
    let line = memchr::memchr_iter(b'\n', &text.as_bytes()[..start]).count() + 1;
    (line, text[start..offset].chars().count() + 1)
}

#[cfg(test)]
mod tests;

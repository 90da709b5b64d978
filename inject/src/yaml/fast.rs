//! A quick parser for the plain block YAML that most manifests are written in.
//!
//! saphyr-parser reads all of YAML, but it copies every scalar out character by character and
//! passes each token through two state machines; on a large manifest that is most of `mesh
//! inject`'s time. Manifests mostly use a small, regular part of YAML:
//!
//! - block mappings with plain or one-line quoted keys, and block sequences, including the
//!   "indentless" `- item` lists under a key and `- key: value` items;
//! - one-line plain, single-quoted and double-quoted (escape-free) scalars;
//! - one-line flow collections of such scalars, such as `[]`, `{}` and `["--port", "8080"]`;
//! - literal block scalars (`|`, `|-`, `|+`);
//! - comments and blank lines.
//!
//! This module reads exactly that part, line by line, borrowing scalars from the text. On anything
//! else it gives up, and the caller parses the chunk with saphyr-parser, which also reports any
//! syntax error. Anything else means: a tab, a control character, a scalar starting with a
//! non-ASCII character, a tag, an anchor, a multi-line flow or quoted scalar, a folded scalar, a
//! plain scalar continued on the next line, indentation it does not expect, or anything that may be
//! an error.
//!
//! **Invariant:** when [`parse`] returns a tree, it is the tree saphyr-parser's events build, to the
//! byte. Debug builds check this on every chunk they parse, so every test doubles as a differential
//! test of the two parsers.

use std::borrow::Cow;

use saphyr_parser::ScalarStyle;

use super::tree::{Node, NodeKind};

/// How deep collections may nest before the quick parser, which recurses, leaves a document to
/// saphyr-parser, which does not.
const MAX_DEPTH: usize = 100;

/// The chunk is outside the part of YAML this module reads.
struct GiveUp;

type Result<T> = std::result::Result<T, GiveUp>;

/// Parses a chunk holding one document whose root is a block mapping, or returns `None` if the chunk
/// is anything else.
pub(super) fn parse(chunk: &str, base: usize) -> Option<Vec<Option<Node<'_>>>> {
    let bytes = chunk.as_bytes();
    // Printable characters and line feeds only: no tabs, carriage returns, byte-order marks or
    // control characters, so every indentation is spaces and every line ends with `\n`. Other
    // characters only ever sit inside scalars and comments: the parser reads ASCII bytes alone, and
    // leaves scalars that start with anything else to saphyr-parser.
    if !bytes
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) || b == b'\n')
        && !chunk
            .chars()
            .all(|c| matches!(c, ' '..='~' | '\n') || (c >= '\u{a0}' && c != '\u{feff}'))
    {
        return None;
    }
    // At the end of the stream, saphyr-parser stretches some tokens over a comment that is not
    // followed by a line break; the quick parser takes only whole lines.
    if !chunk.ends_with('\n') {
        return None;
    }
    let reader = Reader { text: chunk, bytes };
    let mut pos = 0;
    if chunk.starts_with("---") {
        let end = reader.line_end(0);
        reader.rest_is_comment(3, end).ok()?;
        pos = reader.next_line(end);
    }
    let first = reader.content_line(pos).ok()??;
    let key = reader.key_at(first.content, first.end).ok()??;
    let (mut root, next) = reader.block_map(key, first.indent, first.end, 0).ok()?;
    if !matches!(reader.content_line(next), Ok(None)) {
        return None;
    }
    root.shift(base);
    Some(vec![Some(root)])
}

/// A line with content: not blank, and not only a comment.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Number of leading spaces.
    indent: usize,
    /// Offset of the first character after the indentation.
    content: usize,
    /// Offset of the line's `\n`, or the end of the text.
    end: usize,
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn line_end(&self, from: usize) -> usize {
        memchr::memchr(b'\n', &self.bytes[from..]).map_or(self.bytes.len(), |i| from + i)
    }

    fn next_line(&self, end: usize) -> usize {
        (end + 1).min(self.bytes.len())
    }

    fn skip_spaces(&self, mut at: usize, end: usize) -> usize {
        while at < end && self.bytes[at] == b' ' {
            at += 1;
        }
        at
    }

    /// The first line at or after `pos` with content, skipping blank and comment lines.
    fn content_line(&self, mut pos: usize) -> Result<Option<Line>> {
        while pos < self.bytes.len() {
            let end = self.line_end(pos);
            let content = self.skip_spaces(pos, end);
            if content < end && self.bytes[content] != b'#' {
                let indent = content - pos;
                let line = &self.bytes[content..end];
                // Document markers and directives.
                if indent == 0
                    && (line.starts_with(b"...") || line.starts_with(b"---") || line[0] == b'%')
                {
                    return Err(GiveUp);
                }
                return Ok(Some(Line {
                    indent,
                    content,
                    end,
                }));
            }
            pos = self.next_line(end);
        }
        Ok(None)
    }

    /// Whether only spaces, or spaces and then a comment, follow `from` on its line.
    fn rest_is_comment(&self, from: usize, end: usize) -> Result<()> {
        let at = self.skip_spaces(from, end);
        if at == end || (at > from && self.bytes[at] == b'#') {
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// Whether `at` holds a block-sequence entry indicator: `-` followed by a space or the line end.
    fn is_dash_at(&self, at: usize, end: usize) -> bool {
        self.bytes[at] == b'-' && (at + 1 == end || self.bytes[at + 1] == b' ')
    }

    fn is_dash(&self, line: &Line) -> bool {
        self.is_dash_at(line.content, line.end)
    }

    /// A mapping key starting at `at`, and the offset of its `:`, if the line holds `key: …`.
    fn key_at(&self, at: usize, end: usize) -> Result<Option<(Node<'a>, usize)>> {
        let b = self.bytes;
        let (key, after) = match b[at] {
            b'"' | b'\'' => self.quoted(at, end)?,
            first if plain_start(first, b.get(at + 1).copied()) => {
                let mut i = at;
                loop {
                    if i == end {
                        return Ok(None);
                    }
                    match b[i] {
                        b':' if i + 1 == end || b[i + 1] == b' ' => break,
                        // A comment ends the scalar before any `:`: not a key.
                        b'#' if b[i - 1] == b' ' => return Ok(None),
                        _ => i += 1,
                    }
                }
                // `key :` and over-long implicit keys are left to the full parser.
                if b[i - 1] == b' ' || i - at > 1000 {
                    return Err(GiveUp);
                }
                (plain(self.text, at, i), i)
            }
            _ => return Ok(None),
        };
        if after < end && b[after] == b':' && (after + 1 == end || b[after + 1] == b' ') {
            Ok(Some((key, after)))
        } else {
            Ok(None)
        }
    }

    /// A block mapping in column `col` whose first key, and the offset of its `:`, were read from
    /// the line ending at `end`; returns it and where the text after it starts.
    fn block_map(
        &self,
        first: (Node<'a>, usize),
        col: usize,
        mut end: usize,
        depth: usize,
    ) -> Result<(Node<'a>, usize)> {
        if depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        let (mut key, mut colon) = first;
        let mut entries = Vec::new();
        let next = loop {
            let (value, next) = self.value(colon + 1, end, col, colon, true, depth)?;
            entries.push((key, value));
            match self.content_line(next)? {
                Some(line) if line.indent == col => {
                    (key, colon) = self.key_at(line.content, line.end)?.ok_or(GiveUp)?;
                    end = line.end;
                }
                Some(line) if line.indent > col => return Err(GiveUp),
                _ => break next,
            }
        };
        let start = entries[0].0.start;
        let finish = entries[entries.len() - 1].1.end;
        Ok((
            block(
                start,
                finish,
                NodeKind::Map {
                    entries,
                    flow: false,
                },
            ),
            next,
        ))
    }

    /// A block sequence whose first entry is on `first`. An indentless one (`- item` lines in the
    /// same column as the key they belong to) starts where its first item's token does.
    fn block_seq(&self, first: Line, indentless: bool, depth: usize) -> Result<(Node<'a>, usize)> {
        if depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        let col = first.indent;
        // Where the first item's token starts: a block scalar's node starts at its text, after
        // its `|` header.
        let first_at = self.skip_spaces(first.content + 1, first.end);
        let mut items = Vec::new();
        let mut line = first;
        let next = loop {
            let dash = line.content;
            let at = self.skip_spaces(dash + 1, line.end);
            let (item, next) = if at < line.end && self.is_dash_at(at, line.end) {
                return Err(GiveUp);
            } else if at < line.end
                && let Some(key) = self.key_at(at, line.end)?
            {
                let column = col + (at - dash);
                self.block_map(key, column, line.end, depth + 1)?
            } else {
                self.value(dash + 1, line.end, col, line.end, false, depth)?
            };
            items.push(item);
            match self.content_line(next)? {
                Some(l) if l.indent == col && self.is_dash(&l) => line = l,
                Some(l) if l.indent > col => return Err(GiveUp),
                _ => break next,
            }
        };
        let start = if !indentless {
            first.content
        } else if first_at < first.end && self.bytes[first_at] != b'#' {
            first_at
        } else {
            // Nothing after the dash: the sequence starts where its line ends.
            first.end
        };
        let finish = items[items.len() - 1].end;
        Ok((
            block(start, finish, NodeKind::Seq { items, flow: false }),
            next,
        ))
    }

    /// A nested block collection starting on `line`.
    fn block_node(&self, line: Line, depth: usize) -> Result<(Node<'a>, usize)> {
        if self.is_dash(&line) {
            self.block_seq(line, false, depth)
        } else {
            let key = self.key_at(line.content, line.end)?.ok_or(GiveUp)?;
            self.block_map(key, line.indent, line.end, depth)
        }
    }

    /// The value after a `:` or `-` that ends at `after`, on a line ending at `end`, in a
    /// collection at column `parent`. An empty value is a null scalar at `null_at`.
    fn value(
        &self,
        after: usize,
        end: usize,
        parent: usize,
        null_at: usize,
        in_map: bool,
        depth: usize,
    ) -> Result<(Node<'a>, usize)> {
        let at = self.skip_spaces(after, end);
        if at == end || self.bytes[at] == b'#' {
            self.rest_is_comment(after, end)?;
            let next = self.next_line(end);
            return match self.content_line(next)? {
                Some(line) if line.indent > parent => self.block_node(line, depth + 1),
                Some(line) if in_map && line.indent == parent && self.is_dash(&line) => {
                    self.block_seq(line, true, depth + 1)
                }
                _ => Ok((null(null_at), next)),
            };
        }
        let (node, after_value) = match self.bytes[at] {
            b'|' => return self.literal(at, end, parent),
            b'"' | b'\'' => self.quoted(at, end)?,
            b'[' | b'{' => self.flow(at, end)?,
            first if plain_start(first, self.bytes.get(at + 1).copied()) => {
                self.block_plain(at, end)?
            }
            _ => return Err(GiveUp),
        };
        self.rest_is_comment(after_value, end)?;
        let next = self.next_line(end);
        // A deeper line after a one-line value would continue it, or be an error.
        match self.content_line(next)? {
            Some(line) if line.indent > parent => Err(GiveUp),
            _ => Ok((node, next)),
        }
    }

    /// A plain scalar in block context, running to the end of the line or a comment.
    fn block_plain(&self, at: usize, end: usize) -> Result<(Node<'a>, usize)> {
        let b = self.bytes;
        let mut stop = end;
        for i in at..end {
            match b[i] {
                b':' if i + 1 == end || b[i + 1] == b' ' => return Err(GiveUp),
                b'#' if b[i - 1] == b' ' => {
                    stop = i;
                    break;
                }
                _ => {}
            }
        }
        while b[stop - 1] == b' ' {
            stop -= 1;
        }
        Ok((plain(self.text, at, stop), stop))
    }

    /// A quoted scalar that closes on its own line; returns it and the offset after it.
    fn quoted(&self, at: usize, end: usize) -> Result<(Node<'a>, usize)> {
        let b = self.bytes;
        let quote = b[at];
        let mut i = at + 1;
        let mut escaped = false;
        let close = loop {
            let Some(found) = memchr::memchr(quote, &b[i..end]) else {
                return Err(GiveUp);
            };
            let q = i + found;
            if quote == b'\'' && b.get(q + 1) == Some(&b'\'') && q + 1 < end {
                escaped = true;
                i = q + 2;
                continue;
            }
            break q;
        };
        let inner = &self.text[at + 1..close];
        let (value, style) = if quote == b'"' {
            if inner.contains('\\') {
                return Err(GiveUp);
            }
            (Cow::Borrowed(inner), ScalarStyle::DoubleQuoted)
        } else if escaped {
            (
                Cow::Owned(inner.replace("''", "'")),
                ScalarStyle::SingleQuoted,
            )
        } else {
            (Cow::Borrowed(inner), ScalarStyle::SingleQuoted)
        };
        let finish = self.trail(close + 1, end);
        let node = Node {
            start: at,
            end: finish,
            anchor: 0,
            tagged: false,
            kind: NodeKind::Scalar { value, style },
        };
        Ok((node, finish))
    }

    /// Where a token that closes with a quote or bracket at `from` ends for saphyr-parser: past the
    /// spaces after it, and past a comment to the end of the line.
    fn trail(&self, from: usize, end: usize) -> usize {
        let at = self.skip_spaces(from, end);
        if at < end && at > from && self.bytes[at] == b'#' {
            end
        } else {
            at
        }
    }

    /// A flow sequence or mapping of scalars that closes on its own line.
    fn flow(&self, at: usize, end: usize) -> Result<(Node<'a>, usize)> {
        let b = self.bytes;
        let is_map = b[at] == b'{';
        let close = if is_map { b'}' } else { b']' };
        let mut items = Vec::new();
        let mut entries = Vec::new();
        let mut i = self.skip_spaces(at + 1, end);
        if i < end && b[i] == close {
            i += 1;
        } else {
            loop {
                let (item, after) = self.flow_scalar(i, end)?;
                i = self.skip_spaces(after, end);
                if is_map {
                    if !(i + 1 < end && b[i] == b':' && b[i + 1] == b' ') {
                        return Err(GiveUp);
                    }
                    let (value, after) = self.flow_scalar(self.skip_spaces(i + 1, end), end)?;
                    entries.push((item, value));
                    i = self.skip_spaces(after, end);
                } else {
                    items.push(item);
                }
                match b.get(i) {
                    Some(&c) if i < end && c == close => {
                        i += 1;
                        break;
                    }
                    Some(b',') if i < end => {
                        i = self.skip_spaces(i + 1, end);
                        // A trailing comma is left to the full parser.
                        if i == end || b[i] == close {
                            return Err(GiveUp);
                        }
                    }
                    _ => return Err(GiveUp),
                }
            }
        }
        let kind = if is_map {
            NodeKind::Map {
                entries,
                flow: true,
            }
        } else {
            NodeKind::Seq { items, flow: true }
        };
        let finish = self.trail(i, end);
        Ok((block(at, finish, kind), finish))
    }

    /// A quoted scalar, or a plain one of the plainest characters, inside a flow collection.
    fn flow_scalar(&self, at: usize, end: usize) -> Result<(Node<'a>, usize)> {
        let b = self.bytes;
        if at >= end {
            return Err(GiveUp);
        }
        if matches!(b[at], b'"' | b'\'') {
            return self.quoted(at, end);
        }
        if !(b[at].is_ascii_alphanumeric() || matches!(b[at], b'_' | b'.' | b'/')) {
            return Err(GiveUp);
        }
        let mut i = at;
        while i < end && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'/' | b'-'))
        {
            i += 1;
        }
        Ok((plain(self.text, at, i), i))
    }

    /// A literal block scalar whose `|` is at `at`, in a collection at column `parent`.
    fn literal(&self, at: usize, end: usize, parent: usize) -> Result<(Node<'a>, usize)> {
        let b = self.bytes;
        let mut header = at + 1;
        let chomp = match b.get(header) {
            Some(b'-') if header < end => Chomp::Strip,
            Some(b'+') if header < end => Chomp::Keep,
            _ => Chomp::Clip,
        };
        if chomp != Chomp::Clip {
            header += 1;
        }
        self.rest_is_comment(header, end)?;
        // The first line sets the indentation; leading blank lines are left to the full parser.
        let first = self.next_line(end);
        if end == b.len() || first == b.len() {
            return Err(GiveUp);
        }
        let first_end = self.line_end(first);
        let indent = self.skip_spaces(first, first_end) - first;
        if first + indent == first_end || indent <= parent {
            return Err(GiveUp);
        }
        let start = first + indent;
        let mut value = String::new();
        let mut blanks = 0;
        let mut pos = first;
        // The line after the scalar, and where the scalar ends.
        let (next, stop) = loop {
            if pos == b.len() {
                break (pos, pos);
            }
            let line_end = self.line_end(pos);
            // A last line without a line feed is left to the full parser.
            if line_end == b.len() {
                return Err(GiveUp);
            }
            let spaces = self.skip_spaces(pos, line_end) - pos;
            if pos + spaces == line_end {
                // Blank: part of the scalar, unless it holds spaces beyond the indentation.
                if spaces > indent {
                    return Err(GiveUp);
                }
                blanks += 1;
            } else if spaces < indent {
                // The scalar takes the indentation of the line that ends it.
                break (pos, pos + spaces);
            } else {
                for _ in 0..blanks {
                    value.push('\n');
                }
                blanks = 0;
                value.push_str(&self.text[pos + indent..line_end]);
                value.push('\n');
            }
            pos = line_end + 1;
        };
        match chomp {
            Chomp::Strip => {
                value.pop();
            }
            Chomp::Clip => {}
            Chomp::Keep => (0..blanks).for_each(|_| value.push('\n')),
        }
        let node = Node {
            start,
            end: stop,
            anchor: 0,
            tagged: false,
            kind: NodeKind::Scalar {
                value: Cow::Owned(value),
                style: ScalarStyle::Literal,
            },
        };
        match self.content_line(next)? {
            Some(line) if line.indent > parent => Err(GiveUp),
            _ => Ok((node, next)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

/// Whether a plain scalar may start with `first` (followed by `second`). Indicators and anything
/// unusual are left to the full parser.
fn plain_start(first: u8, second: Option<u8>) -> bool {
    first.is_ascii_alphanumeric()
        || matches!(first, b'_' | b'.' | b'/' | b'$' | b'(' | b'+' | b'=' | b'~')
        || (first == b'-' && second.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

fn plain(text: &str, start: usize, end: usize) -> Node<'_> {
    Node {
        start,
        end,
        anchor: 0,
        tagged: false,
        kind: NodeKind::Scalar {
            value: Cow::Borrowed(&text[start..end]),
            style: ScalarStyle::Plain,
        },
    }
}

fn null<'a>(at: usize) -> Node<'a> {
    Node {
        start: at,
        end: at,
        anchor: 0,
        tagged: false,
        kind: NodeKind::Scalar {
            value: Cow::Borrowed(""),
            style: ScalarStyle::Plain,
        },
    }
}

fn block(start: usize, end: usize, kind: NodeKind<'_>) -> Node<'_> {
    Node {
        start,
        end,
        anchor: 0,
        tagged: false,
        kind,
    }
}

impl Node<'_> {
    /// Moves the node and its children by `base` bytes.
    fn shift(&mut self, base: usize) {
        self.start += base;
        self.end += base;
        match &mut self.kind {
            NodeKind::Map { entries, .. } => entries.iter_mut().for_each(|(k, v)| {
                k.shift(base);
                v.shift(base);
            }),
            NodeKind::Seq { items, .. } => items.iter_mut().for_each(|n| n.shift(base)),
            NodeKind::Scalar { .. } | NodeKind::Alias(_) => {}
        }
    }
}

/// Where two parses of a chunk first differ, for the debug-build check in `parse_chunk`.
pub(super) fn difference(full: Option<&[Option<Node<'_>>]>, quick: &[Option<Node<'_>>]) -> String {
    fn walk(a: &Node<'_>, b: &Node<'_>) -> Option<String> {
        let shallow = |n: &Node<'_>| match &n.kind {
            NodeKind::Scalar { value, style } => {
                format!("{}..{} {value:?} {style:?}", n.start, n.end)
            }
            NodeKind::Map { entries, flow } => {
                format!(
                    "{}..{} map of {} flow={flow}",
                    n.start,
                    n.end,
                    entries.len()
                )
            }
            NodeKind::Seq { items, flow } => {
                format!("{}..{} seq of {} flow={flow}", n.start, n.end, items.len())
            }
            NodeKind::Alias(id) => format!("{}..{} alias {id}", n.start, n.end),
        };
        fn children<'n, 'a>(n: &'n Node<'a>) -> Vec<&'n Node<'a>> {
            match &n.kind {
                NodeKind::Map { entries, .. } => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
                NodeKind::Seq { items, .. } => items.iter().collect(),
                _ => Vec::new(),
            }
        }
        let (ca, cb) = (children(a), children(b));
        if ca.len() == cb.len()
            && let Some(d) = ca.iter().zip(&cb).find_map(|(x, y)| walk(x, y))
        {
            return Some(d);
        }
        (a != b).then(|| {
            format!(
                "saphyr-parser has {}, the quick parser {}",
                shallow(a),
                shallow(b)
            )
        })
    }
    match full {
        None => "saphyr-parser reports an error".to_owned(),
        Some(full) if full.len() != quick.len() => "the document counts differ".to_owned(),
        Some(full) => full
            .iter()
            .zip(quick)
            .find_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => walk(a, b),
                (a, b) => (a != b).then(|| "one root is empty".to_owned()),
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;

//! A YAML document as a tree of nodes that know their byte ranges.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

/// How deeply collections may nest. Real manifests stay under about 30 levels; the limit keeps
/// every walk of the tree (and dropping it) within a thread's stack whatever the input, where a
/// few hundred thousand `- ` once overflowed it. At the limit, parsing, converting and dropping a
/// document fit in a test thread's 2 MiB stack even in a debug build (1 000 levels did not).
pub const MAX_NESTING: usize = 512;

/// A node of a parsed document, with the byte range of its text in the whole stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Byte offset of the node's first character (its anchor or tag, if it has one).
    pub start: usize,
    /// Byte offset just past the node's last character. For block scalars (`|`, `>`) this is where
    /// the next token starts, since their trailing lines belong to them.
    pub end: usize,
    /// The anchor id, or 0 when the node has no `&anchor`.
    pub anchor: usize,
    /// Whether the node carries an explicit tag such as `!!str`.
    pub tagged: bool,
    pub kind: NodeKind<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind<'a> {
    Scalar {
        value: Cow<'a, str>,
        style: ScalarStyle,
    },
    Map {
        entries: Vec<(Node<'a>, Node<'a>)>,
        flow: bool,
    },
    Seq {
        items: Vec<Node<'a>>,
        flow: bool,
    },
    /// `*name`, referring to the node with this anchor id.
    Alias(usize),
}

/// A YAML syntax error, positioned in the whole stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{col}: {message}")]
pub struct SyntaxError {
    /// 1-based line in the stream.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    pub message: String,
}

/// Parses one chunk of the stream into its documents' root nodes.
///
/// `base` is the chunk's byte offset in the stream and `first_line` its first line number, so that
/// node ranges and error positions refer to the whole stream. A document with no content has a
/// root of `None`.
pub fn parse_chunk<'a>(
    chunk: &'a str,
    base: usize,
    first_line: usize,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    if let Some(docs) = super::fast::parse(chunk, base) {
        if cfg!(debug_assertions) {
            assert_same_as_events(chunk, base, first_line, &docs);
        }
        return Ok(docs);
    }
    parse_events(chunk, base, first_line)
}

/// Panics unless `quick`, the quick parser's reading of `chunk`, is what saphyr-parser builds.
pub(super) fn assert_same_as_events(
    chunk: &str,
    base: usize,
    first_line: usize,
    quick: &[Option<Node<'_>>],
) {
    let full = parse_events(chunk, base, first_line);
    if full.as_deref().ok() != Some(quick) {
        panic!(
            "the quick parser and saphyr-parser disagree on {chunk:?}: {}",
            super::fast::difference(full.as_deref().ok(), quick)
        );
    }
}

/// [`parse_chunk`] through saphyr-parser's events, for any YAML.
pub(super) fn parse_events<'a>(
    chunk: &'a str,
    base: usize,
    first_line: usize,
) -> Result<Vec<Option<Node<'a>>>, SyntaxError> {
    let locate = Locator::new(chunk, base);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut root: Option<Node<'a>> = None;
    for event in Parser::new_from_str(chunk) {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: first_line + e.marker().line().saturating_sub(1),
            col: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let start = locate.offset(&span.start);
        let end = locate.offset(&span.end);
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(root.take().filter(|n| !n.is_empty_scalar()));
                continue;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if stack.len() >= MAX_NESTING => {
                return Err(SyntaxError {
                    line: first_line + span.start.line().saturating_sub(1),
                    col: span.start.col() + 1,
                    message: format!("collections nested more than {MAX_NESTING} levels deep"),
                });
            }
            Event::MappingStart(anchor, tag) => {
                stack.push(Frame {
                    start,
                    anchor,
                    tagged: tag.is_some(),
                    content: Content::Map(Vec::new(), None),
                });
                continue;
            }
            Event::SequenceStart(anchor, tag) => {
                stack.push(Frame {
                    start,
                    anchor,
                    tagged: tag.is_some(),
                    content: Content::Seq(Vec::new()),
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(frame) = stack.pop() else { continue };
                // A flow collection ends with its closing bracket; a block one ends where the
                // next token begins, so its end is that of its last child.
                let flow = end > start;
                let kind = match frame.content {
                    Content::Map(entries, _) => NodeKind::Map { entries, flow },
                    Content::Seq(items) => NodeKind::Seq { items, flow },
                };
                let mut node = Node {
                    start: frame.start,
                    end: if flow { end } else { frame.start },
                    anchor: frame.anchor,
                    tagged: frame.tagged,
                    kind,
                };
                if !flow {
                    node.end = node.last_child().map_or(frame.start, |c| c.end);
                    if let Some(first) = node.first_child() {
                        node.start = node.start.min(first.start);
                    }
                }
                node
            }
            Event::Scalar(value, style, anchor, tag) => Node {
                start,
                end,
                anchor,
                tagged: tag.is_some(),
                kind: NodeKind::Scalar { value, style },
            },
            Event::Alias(id) => Node {
                start,
                end,
                anchor: 0,
                tagged: false,
                kind: NodeKind::Alias(id),
            },
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(frame) => frame.push(node),
        }
    }
    Ok(docs)
}

impl<'a> Node<'a> {
    /// The value under `key` in a mapping, by the key's scalar text.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The entry `(key, value)` for `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<&(Node<'a>, Node<'a>)> {
        match &self.kind {
            NodeKind::Map { entries, .. } => entries.iter().find(|(k, _)| k.as_str() == Some(key)),
            _ => None,
        }
    }

    /// Follows a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node<'a>> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The scalar's text, for any scalar style.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Node<'a>, Node<'a>)] {
        match &self.kind {
            NodeKind::Map { entries, .. } => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node<'a>] {
        match &self.kind {
            NodeKind::Seq { items, .. } => items,
            _ => &[],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, NodeKind::Map { .. })
    }

    pub fn is_flow(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Map { flow: true, .. } | NodeKind::Seq { flow: true, .. }
        )
    }

    /// Whether this is a plain scalar that YAML reads as null: empty, `~` or `null`.
    pub fn is_null(&self) -> bool {
        match &self.kind {
            NodeKind::Scalar {
                value,
                style: ScalarStyle::Plain,
            } => !self.tagged && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL"),
            _ => false,
        }
    }

    /// Whether this is a plain scalar that YAML 1.1 (and so kubectl) reads as `true`.
    pub fn is_true(&self) -> bool {
        match &self.kind {
            NodeKind::Scalar {
                value,
                style: ScalarStyle::Plain,
            } => super::scalar::resolve_bool(value) == Some(true),
            _ => false,
        }
    }

    /// Whether the scalar is a block scalar (`|` or `>`), whose text runs to the next token.
    pub fn is_block_scalar(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Scalar {
                style: ScalarStyle::Literal | ScalarStyle::Folded,
                ..
            }
        )
    }

    fn is_empty_scalar(&self) -> bool {
        self.is_null() && self.start == self.end
    }

    fn first_child(&self) -> Option<&Node<'a>> {
        match &self.kind {
            NodeKind::Map { entries, .. } => entries.first().map(|(k, _)| k),
            NodeKind::Seq { items, .. } => items.first(),
            _ => None,
        }
    }

    fn last_child(&self) -> Option<&Node<'a>> {
        match &self.kind {
            NodeKind::Map { entries, .. } => entries.last().map(|(_, v)| v),
            NodeKind::Seq { items, .. } => items.last(),
            _ => None,
        }
    }
}

struct Frame<'a> {
    start: usize,
    anchor: usize,
    tagged: bool,
    content: Content<'a>,
}

enum Content<'a> {
    /// Entries so far, and a key waiting for its value.
    Map(Vec<(Node<'a>, Node<'a>)>, Option<Node<'a>>),
    Seq(Vec<Node<'a>>),
}

impl<'a> Frame<'a> {
    fn push(&mut self, node: Node<'a>) {
        match &mut self.content {
            Content::Map(entries, pending) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
            Content::Seq(items) => items.push(node),
        }
    }
}

/// Turns the parser's character positions into byte offsets in the stream.
struct Locator<'a> {
    base: usize,
    text: &'a str,
    /// Byte offset of each line's start; empty when the text is ASCII and characters are bytes.
    line_starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str, base: usize) -> Self {
        let line_starts = if text.is_ascii() {
            Vec::new()
        } else {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
                .collect()
        };
        Locator {
            base,
            text,
            line_starts,
        }
    }

    fn offset(&self, mark: &Marker) -> usize {
        if self.line_starts.is_empty() {
            return self.base + mark.index().min(self.text.len());
        }
        let Some(&line_start) = self.line_starts.get(mark.line().saturating_sub(1)) else {
            return self.base + self.text.len();
        };
        let line = &self.text[line_start..];
        let col = line
            .char_indices()
            .nth(mark.col())
            .map_or(line.len(), |(i, _)| i);
        self.base + line_start + col
    }
}

#[cfg(test)]
mod tests;

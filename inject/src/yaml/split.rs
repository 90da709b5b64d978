//! Splitting a stream into documents without parsing it.
//!
//! A line that starts with `---` followed by white space (or nothing) always begins a new document:
//! YAML forbids such a line inside any scalar. So the stream can be cut there cheaply, and each piece
//! parsed on its own, in parallel, with its own small tree that is dropped as soon as its edits are
//! known.

use std::ops::Range;

/// One piece of the stream, from a `---` line (or the start of the stream) up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range in the stream, including the leading `---` line if there is one.
    pub range: Range<usize>,
    /// The 1-based line number of the first line of the chunk.
    pub first_line: usize,
    /// Whether the chunk holds a document at all. The empty text before a leading `---`, or after a
    /// trailing one, does not; a document with only blank lines or comments does (it is reported as
    /// missing its `kind`), as with kubectl and Linkerd.
    pub is_document: bool,
}

/// Cuts `text` into chunks at document-start markers.
///
/// A stream that is a sequence of JSON values (`{…}{…}` or one per line) is cut at the end of each
/// value instead, so that `mesh inject -o json` output can be read back.
pub fn split(text: &str) -> Vec<Chunk> {
    if let Some(chunks) = split_json(text) {
        return chunks;
    }
    // Every line but the first starts after a newline.
    let mut starts = vec![0];
    starts.extend(
        memchr::memmem::find_iter(text.as_bytes(), b"\n---")
            .map(|i| i + 1)
            .filter(|&start| is_document_start(&text[start..])),
    );
    // A marker on the very first line starts the first document: there is no text before it.
    let mut chunks = Vec::with_capacity(starts.len());
    let mut line_no = 1;
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let piece = &text[start..end];
        let is_document = if is_document_start(piece) {
            let marker_line_end = piece.find('\n').map_or(piece.len(), |i| i + 1);
            let after_marker = piece[3..marker_line_end].trim();
            !after_marker.is_empty() && !after_marker.starts_with('#')
                || marker_line_end < piece.len()
        } else {
            !piece.is_empty()
        };
        chunks.push(Chunk {
            range: start..end,
            first_line: line_no,
            is_document,
        });
        line_no += memchr::memchr_iter(b'\n', piece.as_bytes()).count();
    }
    chunks
}

/// Whether `text` is a stream of JSON values rather than YAML documents.
pub fn looks_like_json(text: &str) -> bool {
    split_json(text).is_some()
}

fn is_document_start(line: &str) -> bool {
    line.starts_with("---")
        && matches!(
            line.as_bytes().get(3),
            None | Some(b' ' | b'\t' | b'\r' | b'\n')
        )
}

/// Splits a stream of JSON values, or returns `None` if the text is not one.
fn split_json(text: &str) -> Option<Vec<Chunk>> {
    let first = text.trim_start().as_bytes().first()?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut line_no = 1;
    loop {
        match values.next() {
            None => break,
            Some(Ok(_)) => {
                let end = values.byte_offset();
                let piece = &text[start..end];
                chunks.push(Chunk {
                    range: start..end,
                    first_line: line_no,
                    is_document: true,
                });
                line_no += memchr::memchr_iter(b'\n', piece.as_bytes()).count();
                start = end;
            }
            // Not JSON after all (a YAML flow mapping, say): parse it as YAML, which reports
            // errors with better positions.
            Some(Err(_)) => return None,
        }
    }
    if start < text.len() {
        // Trailing white space belongs to the last value.
        if let Some(last) = chunks.last_mut() {
            last.range.end = text.len();
        }
    }
    Some(chunks)
}

#[cfg(test)]
mod tests;

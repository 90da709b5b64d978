//! A span-aware view of YAML text.
//!
//! `mesh inject` promises that its output is the input plus inserted lines, so it never
//! re-serializes a document. Instead it parses each document into a tree of [`Node`]s that remember
//! where they sit in the text, decides what to change, and expresses each change as an [`Edit`] of a
//! byte range. Everything not edited is copied through untouched: comments, quoting, key order,
//! anchors, block scalars and document markers.
//!
//! Documents in plain block YAML are parsed by a quick line-by-line reader of that part of YAML;
//! everything else, and every syntax error, by saphyr-parser. Both build the same tree.

mod edit;
mod fast;
mod json;
pub mod scalar;
mod split;
mod tree;

pub use edit::{Edit, EditError, EditList, Editor, Group, NewValue, Position, apply, named};
pub use json::{ALIAS_EXPANSION_RATIO, MIN_ALIAS_BUDGET, to_json, to_json_documents};
pub use split::{Chunk, looks_like_json, split};
pub use tree::{Node, NodeKind, SyntaxError, parse_chunk};

//! Linkerd 1 delegation tables ("dtabs"): the types and their parser, nothing more.
//!
//! A dtab is a list of rules that rewrite a logical name into the names of concrete
//! destinations, for example
//!
//! ```text
//! /svc => /#/io.l5d.fs ; /svc/web => 9 * /#/io.l5d.fs/web-v1 & 1 * /#/io.l5d.fs/web-v2
//! ```
//!
//! This module only reads and prints them; resolving names against a dtab is a later stage.
//!
//! # Grammar
//!
//! The grammar is Finagle's (`NameTreeParsers`, `Path.read`, `NameTree.read`), which Linkerd 1
//! uses as it is:
//!
//! ```text
//! dtab     ::= ws (dentry ws (';' ws dentry ws)* (';' ws)?)?
//! dentry   ::= prefix ws '=>' tree
//! prefix   ::= '/' | ('/' (label | '*'))+
//! tree     ::= union (ws '|' union)*          -- alternatives: the first that resolves
//! union    ::= weighted (ws '&' weighted)*    -- load-balanced branches
//! weighted ::= ws (weight ws '*' ws)? simple
//! simple   ::= '(' tree ws ')' | path | '!' | '~' | '$'
//! path     ::= '/' | ('/' label)+
//! label    ::= (showable | '\x' hex hex)+
//! showable ::= [0-9A-Za-z] | '_' | ':' | '.' | '#' | '$' | '%' | '-'
//! weight   ::= [0-9]* '.'? [0-9]*             -- not '.' alone; default 1
//! ws       ::= (whitespace | '#' to the end of the line)*
//! ```
//!
//! `|` binds looser than `&`, so `/a & /b | /c` is `(/a & /b) | /c`. `!` fails the
//! resolution, `~` is a negative (try the next alternative), `$` is an empty but existing
//! destination. A prefix element `*` matches any one segment; a literal `*` or any byte outside
//! the showable set is written `\x2a`. `#` starts a comment only where whitespace may stand, so
//! `/#/io.l5d.fs` is a path whose first segment is `#`. A single weighted branch is its tree (the
//! weight is dropped, as Finagle does).
//!
//! # Limits and where we differ from Finagle
//!
//! - At most [`MAX_DTAB_LEN`] bytes, and parentheses nest at most [`MAX_DEPTH`] deep: the input
//!   comes from an environment variable, and neither memory nor the parser's stack may grow with
//!   what it holds. Finagle has neither limit. The parser keeps open parentheses on a heap stack of
//!   its own, so deep input costs no call stack either.
//! - A weight must be finite: Finagle reads a long run of digits as infinity, which no balancer
//!   can use.
//! - Whitespace is ASCII (space, `\t`, `\n`, `\x0b`, `\x0c`, `\r`) and `\x1c`–`\x1f`, as Java's
//!   `isWhitespace` has them; other Unicode spaces are an error rather than a separator.
//! - A prefix is a type of its own ([`Prefix`]), not a [`Path`]: only a prefix may hold `*`.
//! - Errors carry a line and column (1-based, in characters) instead of Finagle's bracketed copy
//!   of the input, so a message about a long variable stays short.

mod parse;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::fmt;

pub use parse::{DtabError, DtabErrorKind, MAX_DEPTH, MAX_DTAB_LEN};

/// A delegation table: rules in the order written (later rules take precedence when resolving).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dtab(pub Vec<Dentry>);

/// One rule: names that start with `prefix` are rewritten to `tree`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dentry {
    pub prefix: Prefix,
    pub tree: NameTree,
}

/// A hierarchical name: `/` alone is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(Vec<Vec<u8>>);

/// The left-hand side of a rule: a path whose elements may be `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Prefix(Vec<PrefixElem>);

/// One element of a [`Prefix`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrefixElem {
    /// `*`: matches any one segment.
    Any,
    /// A segment that must match exactly; never empty.
    Label(Vec<u8>),
}

/// Where a name goes.
#[derive(Debug, Clone, PartialEq)]
pub enum NameTree {
    /// A path, resolved further.
    Leaf(Path),
    /// `~`: nothing here; the next alternative is tried.
    Neg,
    /// `!`: resolution fails, without trying further alternatives.
    Fail,
    /// `$`: a destination that exists but has no endpoints.
    Empty,
    /// `a | b`: the first alternative that resolves.
    Alt(Vec<NameTree>),
    /// `w * a & w * b`: traffic split across the branches by weight.
    Union(Vec<Weighted>),
}

/// One branch of a [`NameTree::Union`].
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    /// Finite and not negative.
    pub weight: f64,
    pub tree: NameTree,
}

/// The weight a branch has when none is written.
pub const DEFAULT_WEIGHT: f64 = 1.0;

impl Dtab {
    /// Parses a dtab, e.g. the value of an environment variable.
    pub fn parse(input: &str) -> Result<Dtab, DtabError> {
        parse::dtab(input)
    }
}

impl Path {
    /// A path of these segments; `None` if a segment is empty (no syntax can write one).
    pub fn new(segments: Vec<Vec<u8>>) -> Option<Path> {
        segments
            .iter()
            .all(|s| !s.is_empty())
            .then_some(Path(segments))
    }

    pub fn segments(&self) -> &[Vec<u8>] {
        &self.0
    }
}

impl Prefix {
    /// A prefix of these elements; `None` if a label is empty.
    pub fn new(elems: Vec<PrefixElem>) -> Option<Prefix> {
        elems
            .iter()
            .all(|e| !matches!(e, PrefixElem::Label(l) if l.is_empty()))
            .then_some(Prefix(elems))
    }

    pub fn elems(&self) -> &[PrefixElem] {
        &self.0
    }
}

/// Whether `b` may stand in a label unescaped (Finagle's `Path.showableChars`).
pub(crate) fn is_showable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'#' | b'$' | b'%' | b'-')
}

fn write_label(f: &mut fmt::Formatter<'_>, label: &[u8]) -> fmt::Result {
    for &b in label {
        if is_showable(b) {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.0 {
            f.write_str("/")?;
            write_label(f, segment)?;
        }
        Ok(())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for elem in &self.0 {
            f.write_str("/")?;
            match elem {
                PrefixElem::Any => f.write_str("*")?,
                PrefixElem::Label(label) => write_label(f, label)?,
            }
        }
        Ok(())
    }
}

/// Prints the canonical form: ` | `, ` & `, every weight written (Rust's shortest `f64` form,
/// which has no exponent and so reads back as a weight), and parentheses only where the
/// parser would otherwise group differently. A parsed tree is at most [`MAX_DEPTH`]
/// parentheses deep, which bounds this recursion; an `Alt` or `Union` with no branches (which
/// no input parses to) prints as `~`, what it evaluates to.
impl fmt::Display for NameTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameTree::Leaf(path) => write!(f, "{path}"),
            NameTree::Neg => f.write_str("~"),
            NameTree::Fail => f.write_str("!"),
            NameTree::Empty => f.write_str("$"),
            NameTree::Alt(trees) if trees.is_empty() => f.write_str("~"),
            NameTree::Union(trees) if trees.is_empty() => f.write_str("~"),
            NameTree::Alt(trees) => {
                for (i, tree) in trees.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    // A union needs no parentheses here: `&` binds tighter than `|`.
                    match tree {
                        NameTree::Alt(_) => write!(f, "({tree})")?,
                        _ => write!(f, "{tree}")?,
                    }
                }
                Ok(())
            }
            NameTree::Union(trees) => {
                for (i, Weighted { weight, tree }) in trees.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" & ")?;
                    }
                    match tree {
                        NameTree::Alt(_) | NameTree::Union(_) => write!(f, "{weight} * ({tree})")?,
                        _ => write!(f, "{weight} * {tree}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Dentry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} => {}", self.prefix, self.tree)
    }
}

/// Entries separated by `"; "`, on one line, as an environment variable holds them.
impl fmt::Display for Dtab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, dentry) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{dentry}")?;
        }
        Ok(())
    }
}

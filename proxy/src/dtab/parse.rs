//! The dtab parser: one pass over the bytes, no recursion. Open parentheses live on a stack of
//! [`Group`]s, capped at [`MAX_DEPTH`].

use std::fmt;

use super::{DEFAULT_WEIGHT, Dentry, Dtab, NameTree, Path, Prefix, PrefixElem, Weighted};

/// The longest dtab accepted, in bytes: far more than any rule set written by hand, small
/// enough that a runaway variable cannot cost memory.
pub const MAX_DTAB_LEN: usize = 64 * 1024;

/// How deep parentheses may nest.
pub const MAX_DEPTH: usize = 64;

/// A dtab that does not parse, and where: `at 1:23: expected '=>', found '-'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {line}:{column}: {kind}")]
pub struct DtabError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub kind: DtabErrorKind,
}

/// What is wrong at a [`DtabError`]'s position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtabErrorKind {
    /// The input is longer than [`MAX_DTAB_LEN`]; the position is where the limit falls.
    #[error("the dtab is {len} bytes; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    /// Something other than what the grammar allows here.
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: Found,
    },
    /// A weight that is `.` alone or has two dots.
    #[error("a weight is digits with at most one '.'")]
    BadWeight,
    /// A weight too large for a finite number.
    #[error("the weight is too large")]
    WeightTooLarge,
    /// Parentheses nested deeper than [`MAX_DEPTH`].
    #[error("parentheses nest deeper than {max}")]
    TooDeep { max: usize },
}

/// What stood where something else was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    End,
    Char(char),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::End => f.write_str("end of input"),
            Found::Char(c) => write!(f, "{c:?}"),
        }
    }
}

pub(super) fn dtab(input: &str) -> Result<Dtab, DtabError> {
    let mut p = Parser {
        input,
        bytes: input.as_bytes(),
        pos: 0,
    };
    if input.len() > MAX_DTAB_LEN {
        return Err(p.error_at(
            MAX_DTAB_LEN,
            DtabErrorKind::TooLong {
                len: input.len(),
                max: MAX_DTAB_LEN,
            },
        ));
    }
    let mut entries = Vec::new();
    p.skip_ws();
    while p.pos < p.bytes.len() {
        entries.push(p.dentry()?);
        p.skip_ws();
        if !p.eat(b';') {
            break;
        }
        p.skip_ws();
    }
    if p.pos < p.bytes.len() {
        return Err(p.expected("';' or end of input"));
    }
    Ok(Dtab(entries))
}

struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// An open parenthesis (or the whole tree): the alternatives so far, and the branches of the
/// union being read.
#[derive(Default)]
struct Group {
    alts: Vec<NameTree>,
    union: Vec<Weighted>,
    /// The weight written before the `(`.
    weight: Option<f64>,
}

impl Group {
    /// A `|`: the union read so far becomes one alternative.
    fn end_union(&mut self) {
        let union = std::mem::take(&mut self.union);
        self.alts.push(match single(union) {
            Ok(only) => only.tree,
            Err(union) => NameTree::Union(union),
        });
    }

    fn finish(mut self) -> NameTree {
        self.end_union();
        match single(self.alts) {
            Ok(only) => only,
            Err(alts) => NameTree::Alt(alts),
        }
    }
}

/// The one element of `v`, or `v` if it has more (or none).
fn single<T>(mut v: Vec<T>) -> Result<T, Vec<T>> {
    if v.len() == 1
        && let Some(only) = v.pop()
    {
        return Ok(only);
    }
    Err(v)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f)
}

fn is_label_start(b: u8) -> bool {
    super::is_showable(b) || b == b'\\'
}

fn is_weight_char(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

impl Parser<'_> {
    fn rest(&self) -> &[u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_is(&self, f: impl Fn(u8) -> bool) -> bool {
        self.peek().is_some_and(f)
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), DtabError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// Whitespace and `#` comments, which run to the end of the line.
    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if is_ws(b) {
                self.pos += 1;
            } else if b == b'#' {
                self.pos = match self.rest().iter().position(|&b| b == b'\n') {
                    Some(n) => self.pos + n + 1,
                    None => self.bytes.len(),
                };
            } else {
                break;
            }
        }
    }

    fn error_at(&self, at: usize, kind: DtabErrorKind) -> DtabError {
        let before = self.bytes.get(..at).unwrap_or(self.bytes);
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        DtabError {
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            // Characters, not bytes: UTF-8 continuation bytes do not start one.
            column: 1 + before
                .get(line_start..)
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b & 0xc0 != 0x80)
                .count(),
            kind,
        }
    }

    fn expected(&self, expected: &'static str) -> DtabError {
        let found = self
            .input
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
            .map_or(Found::End, Found::Char);
        self.error_at(self.pos, DtabErrorKind::Expected { expected, found })
    }

    fn dentry(&mut self) -> Result<Dentry, DtabError> {
        let prefix = self.prefix()?;
        self.skip_ws();
        if !self.rest().starts_with(b"=>") {
            return Err(self.expected("'=>'"));
        }
        self.pos += 2;
        let tree = self.tree()?;
        Ok(Dentry { prefix, tree })
    }

    fn prefix(&mut self) -> Result<Prefix, DtabError> {
        self.expect(b'/', "'/'")?;
        let mut elems = Vec::new();
        if !self.peek_is(|b| is_label_start(b) || b == b'*') {
            return Ok(Prefix(elems));
        }
        loop {
            if self.eat(b'*') {
                elems.push(PrefixElem::Any);
            } else if self.peek_is(is_label_start) {
                elems.push(PrefixElem::Label(self.label()?));
            } else {
                return Err(self.expected("a label or '*'"));
            }
            if !self.eat(b'/') {
                return Ok(Prefix(elems));
            }
        }
    }

    fn path(&mut self) -> Result<Path, DtabError> {
        self.expect(b'/', "'/'")?;
        let mut segments = Vec::new();
        if !self.peek_is(is_label_start) {
            return Ok(Path(segments));
        }
        loop {
            if !self.peek_is(is_label_start) {
                return Err(self.expected("a label"));
            }
            segments.push(self.label()?);
            if !self.eat(b'/') {
                return Ok(Path(segments));
            }
        }
    }

    /// Showable bytes and `\xHH` escapes; the caller has seen that one starts here.
    fn label(&mut self) -> Result<Vec<u8>, DtabError> {
        let mut label = Vec::new();
        while let Some(b) = self.peek() {
            if super::is_showable(b) {
                self.pos += 1;
                label.push(b);
            } else if b == b'\\' {
                self.pos += 1;
                self.expect(b'x', "'x' after '\\'")?;
                let hi = self.hex()?;
                let lo = self.hex()?;
                label.push(hi << 4 | lo);
            } else {
                break;
            }
        }
        Ok(label)
    }

    fn hex(&mut self) -> Result<u8, DtabError> {
        let digit = self
            .peek()
            .and_then(|b| char::from(b).to_digit(16))
            .and_then(|d| u8::try_from(d).ok());
        match digit {
            Some(d) => {
                self.pos += 1;
                Ok(d)
            }
            None => Err(self.expected("a hex digit")),
        }
    }

    /// `w *` before a branch, if one is written.
    fn weight(&mut self) -> Result<Option<f64>, DtabError> {
        if !self.peek_is(is_weight_char) {
            return Ok(None);
        }
        let start = self.pos;
        while self.peek_is(is_weight_char) {
            self.pos += 1;
        }
        let text = self.input.get(start..self.pos).unwrap_or_default();
        if text == "." || text.matches('.').count() > 1 {
            return Err(self.error_at(start, DtabErrorKind::BadWeight));
        }
        let weight: f64 = text
            .parse()
            .map_err(|_| self.error_at(start, DtabErrorKind::BadWeight))?;
        if !weight.is_finite() {
            return Err(self.error_at(start, DtabErrorKind::WeightTooLarge));
        }
        self.skip_ws();
        self.expect(b'*', "'*' after a weight")?;
        self.skip_ws();
        Ok(Some(weight))
    }

    /// `|` of `&` of weighted operands, each a simple tree or a parenthesised tree. The open
    /// groups are on `open`, so nesting costs heap (capped), never call stack.
    fn tree(&mut self) -> Result<NameTree, DtabError> {
        let mut current = Group::default();
        let mut open: Vec<Group> = Vec::new();
        loop {
            // An operand.
            self.skip_ws();
            let weight = self.weight()?;
            if self.peek() == Some(b'(') {
                if open.len() >= MAX_DEPTH {
                    return Err(self.error_at(self.pos, DtabErrorKind::TooDeep { max: MAX_DEPTH }));
                }
                self.pos += 1;
                let group = Group {
                    weight,
                    ..Group::default()
                };
                open.push(std::mem::replace(&mut current, group));
                continue;
            }
            let mut item = Weighted {
                weight: weight.unwrap_or(DEFAULT_WEIGHT),
                tree: self.simple()?,
            };
            // What follows it: an operator, the `)` of open groups, or the end of the tree.
            loop {
                current.union.push(item);
                self.skip_ws();
                match self.peek() {
                    Some(b'&') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'|') => {
                        self.pos += 1;
                        current.end_union();
                        break;
                    }
                    next => match open.pop() {
                        None => return Ok(current.finish()),
                        Some(parent) if next == Some(b')') => {
                            self.pos += 1;
                            let group = std::mem::replace(&mut current, parent);
                            item = Weighted {
                                weight: group.weight.unwrap_or(DEFAULT_WEIGHT),
                                tree: group.finish(),
                            };
                        }
                        Some(_) => return Err(self.expected("'&', '|' or ')'")),
                    },
                }
            }
        }
    }

    fn simple(&mut self) -> Result<NameTree, DtabError> {
        let tree = match self.peek() {
            Some(b'/') => return Ok(NameTree::Leaf(self.path()?)),
            Some(b'!') => NameTree::Fail,
            Some(b'~') => NameTree::Neg,
            Some(b'$') => NameTree::Empty,
            _ => return Err(self.expected("a path, '!', '~', '$', '(' or a weight")),
        };
        self.pos += 1;
        Ok(tree)
    }
}

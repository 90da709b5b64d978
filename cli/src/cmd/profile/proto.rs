//! Routes from the gRPC services of a .proto file: one per rpc, `POST /package.Service/Method`,
//! named by the rpc as Linkerd names them.
//!
//! A small scanner reads just what routes need: the `package`, and each `service`'s `rpc`s with
//! their options. Everything else (messages, enums, imports, options, whose bodies may nest) is
//! skipped by counting braces, so nothing recurses on the input's nesting and every loop moves
//! forward by at least one token. Full protobuf parsing (type checking, imports) is not needed to
//! name routes, so no parser crate is pulled in for it.

use super::{Route, quote_meta};

/// Why a .proto file gave no routes.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The file is not protobuf syntax where the scanner looked.
    #[error("{line}:{col}: {message}")]
    Syntax {
        line: usize,
        col: usize,
        message: String,
    },
    /// No service declares an rpc.
    #[error("no routes found: the file declares no service with an rpc")]
    NoRoutes,
}

/// The routes of the services in `text`, in the order they are declared.
pub fn routes(text: &str) -> Result<Vec<Route>, ProtoError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        end: Pos::end(text),
    };
    let mut package = String::new();
    let mut routes = Vec::new();
    while let Some(token) = parser.next() {
        match token.text {
            "package" => {
                package = parser.ident("a package name")?.to_string();
                parser.expect(";")?;
            }
            "service" => {
                let service = parser.ident("a service name")?;
                parser.expect("{")?;
                let prefix = if package.is_empty() {
                    format!("/{service}/")
                } else {
                    format!("/{package}.{service}/")
                };
                parser.service(&prefix, &mut routes)?;
            }
            "{" => parser.skip_block()?,
            "}" => return Err(parser.error(token.pos, "unexpected `}`".into())),
            ";" => {}
            // A statement (syntax, import, option, message, enum, …): skip to its end.
            _ => parser.skip_statement()?,
        }
    }
    if routes.is_empty() {
        return Err(ProtoError::NoRoutes);
    }
    Ok(routes)
}

#[derive(Debug, Clone, Copy)]
struct Pos {
    line: usize,
    col: usize,
}

impl Pos {
    fn end(text: &str) -> Pos {
        let line = text.lines().count().max(1);
        let col = text.lines().last().map_or(0, |l| l.chars().count()) + 1;
        Pos { line, col }
    }
}

#[derive(Debug)]
struct Token<'t> {
    text: &'t str,
    pos: Pos,
    /// A quoted string: never a keyword or punctuation.
    quoted: bool,
}

struct Parser<'a, 't> {
    tokens: &'a [Token<'t>],
    at: usize,
    end: Pos,
}

impl<'a, 't> Parser<'a, 't> {
    fn next(&mut self) -> Option<&'a Token<'t>> {
        let token = self.tokens.get(self.at)?;
        self.at += 1;
        Some(token)
    }

    fn peek(&self) -> Option<&'a Token<'t>> {
        self.tokens.get(self.at)
    }

    fn error(&self, pos: Pos, message: String) -> ProtoError {
        ProtoError::Syntax {
            line: pos.line,
            col: pos.col,
            message,
        }
    }

    /// The next token, or an error saying `what` was expected at the end of the file.
    fn need(&mut self, what: &str) -> Result<&'a Token<'t>, ProtoError> {
        let end = self.end;
        self.next()
            .ok_or_else(|| self.error(end, format!("expected {what}, found the end of the file")))
    }

    fn expect(&mut self, punct: &str) -> Result<(), ProtoError> {
        let token = self.need(&format!("`{punct}`"))?;
        if token.quoted || token.text != punct {
            return Err(self.error(
                token.pos,
                format!("expected `{punct}`, found `{}`", token.text),
            ));
        }
        Ok(())
    }

    fn ident(&mut self, what: &str) -> Result<&'t str, ProtoError> {
        let token = self.need(what)?;
        if token.quoted || !token.text.starts_with(is_ident_char) {
            return Err(self.error(
                token.pos,
                format!("expected {what}, found `{}`", token.text),
            ));
        }
        Ok(token.text)
    }

    /// Skips to the `}` that closes a block whose `{` was just read.
    fn skip_block(&mut self) -> Result<(), ProtoError> {
        self.block(|_| {})
    }

    /// Reads to the `}` that closes a block whose `{` was just read, showing `visit` every token
    /// inside (nested blocks included). Counts depth instead of recursing.
    fn block(&mut self, mut visit: impl FnMut(&'a Token<'t>)) -> Result<(), ProtoError> {
        let mut depth = 1usize;
        while depth > 0 {
            let token = self.need("`}`")?;
            if !token.quoted {
                match token.text {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    _ => {}
                }
            }
            if depth > 0 {
                visit(token);
            }
        }
        Ok(())
    }

    /// Skips to the end of a statement: its `;`, or the block it opens.
    fn skip_statement(&mut self) -> Result<(), ProtoError> {
        while let Some(token) = self.next() {
            if token.quoted {
                continue;
            }
            match token.text {
                ";" => return Ok(()),
                "{" => {
                    self.skip_block()?;
                    // An option's aggregate value (`option x = { … };`) ends with `;`.
                    if self.peek().is_some_and(|t| !t.quoted && t.text == ";") {
                        self.at += 1;
                    }
                    return Ok(());
                }
                "}" => {
                    return Err(self.error(token.pos, "unexpected `}`".into()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads a service body (after its `{`) up to its `}`, adding a route per rpc.
    fn service(&mut self, prefix: &str, routes: &mut Vec<Route>) -> Result<(), ProtoError> {
        loop {
            let token = self.need("`}` closing the service")?;
            if token.quoted {
                return Err(self.error(token.pos, format!("unexpected `{}`", token.text)));
            }
            match token.text {
                "}" => return Ok(()),
                ";" => {}
                "rpc" => routes.push(self.rpc(prefix)?),
                "{" => self.skip_block()?,
                _ => self.skip_statement()?,
            }
        }
    }

    /// `rpc Name ([stream] Request) returns ([stream] Response)` then `;` or an options block.
    fn rpc(&mut self, prefix: &str) -> Result<Route, ProtoError> {
        let name = self.ident("an rpc name")?;
        for (i, what) in ["the request type", "the response type"].iter().enumerate() {
            if i == 1 {
                let token = self.need("`returns`")?;
                if token.text != "returns" {
                    return Err(self.error(
                        token.pos,
                        format!("expected `returns`, found `{}`", token.text),
                    ));
                }
            }
            self.expect("(")?;
            // `stream` marks a streaming rpc, unless it is the type's name itself.
            if self.ident(what)? == "stream" && self.peek().is_some_and(|t| t.text != ")") {
                self.ident(what)?;
            }
            self.expect(")")?;
        }
        let mut retryable = false;
        let token = self.need("`;` or `{`")?;
        match token.text {
            ";" if !token.quoted => {}
            "{" if !token.quoted => {
                let mut body = Vec::new();
                self.block(|t| body.push(t))?;
                retryable = idempotent(&body);
            }
            other => {
                return Err(self.error(token.pos, format!("expected `;` or `{{`, found `{other}`")));
            }
        }
        let path = format!("{prefix}{name}");
        Ok(Route {
            name: name.to_string(),
            method: "POST".into(),
            path_regex: quote_meta(&path),
            response_classes: Vec::new(),
            retryable,
            timeout: None,
        })
    }
}

/// Whether an rpc's options say it may be retried: `option idempotency_level = IDEMPOTENT;` or
/// `NO_SIDE_EFFECTS`, as Linkerd reads them.
fn idempotent(body: &[&Token<'_>]) -> bool {
    body.windows(2).enumerate().any(|(i, w)| {
        if w[0].quoted || w[0].text != "option" {
            return false;
        }
        let rest = &body[i + 1..];
        let Some(eq) = rest
            .iter()
            .position(|t| !t.quoted && (t.text == "=" || t.text == ";"))
        else {
            return false;
        };
        let named = rest[..eq]
            .iter()
            .any(|t| t.text.contains("idempotency_level"));
        named
            && rest[eq].text == "="
            && rest
                .get(eq + 1)
                .is_some_and(|v| matches!(v.text, "IDEMPOTENT" | "NO_SIDE_EFFECTS"))
    })
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits `text` into identifiers (dotted names and numbers included), quoted strings and single
/// punctuation characters, dropping whitespace and comments.
fn tokenize(text: &str) -> Result<Vec<Token<'_>>, ProtoError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    let (mut line, mut col) = (1usize, 1usize);
    let error = |line, col, message: &str| ProtoError::Syntax {
        line,
        col,
        message: message.to_string(),
    };
    while let Some(&(start, c)) = chars.peek() {
        let pos = Pos { line, col };
        let mut advance = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
            let (_, c) = chars.next()?;
            if c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            Some(c)
        };
        if c.is_whitespace() {
            advance(&mut chars);
        } else if text[start..].starts_with("//") {
            while chars.peek().is_some_and(|&(_, c)| c != '\n') {
                advance(&mut chars);
            }
        } else if text[start..].starts_with("/*") {
            advance(&mut chars);
            advance(&mut chars);
            loop {
                match chars.peek() {
                    None => return Err(error(pos.line, pos.col, "unterminated /* comment")),
                    Some(&(i, '*')) if text[i..].starts_with("*/") => {
                        advance(&mut chars);
                        advance(&mut chars);
                        break;
                    }
                    Some(_) => {
                        advance(&mut chars);
                    }
                }
            }
        } else if c == '"' || c == '\'' {
            advance(&mut chars);
            let end = loop {
                match advance(&mut chars) {
                    None | Some('\n') => {
                        return Err(error(pos.line, pos.col, "unterminated string"));
                    }
                    Some('\\') => {
                        advance(&mut chars);
                    }
                    Some(q) if q == c => break chars.peek().map_or(text.len(), |&(i, _)| i),
                    Some(_) => {}
                }
            };
            tokens.push(Token {
                text: &text[start..end],
                pos,
                quoted: true,
            });
        } else if is_ident_char(c) {
            while chars.peek().is_some_and(|&(_, c)| is_ident_char(c)) {
                advance(&mut chars);
            }
            let end = chars.peek().map_or(text.len(), |&(i, _)| i);
            tokens.push(Token {
                text: &text[start..end],
                pos,
                quoted: false,
            });
        } else {
            advance(&mut chars);
            tokens.push(Token {
                text: &text[start..start + c.len_utf8()],
                pos,
                quoted: false,
            });
        }
    }
    Ok(tokens)
}

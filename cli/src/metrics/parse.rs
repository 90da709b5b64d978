//! A parser for the Prometheus text exposition format (version 0.0.4), as proxies serve it.
//!
//! It borrows from the input: names and unescaped label values point into the text, so a
//! scrape of a busy proxy parses without copying. Samples are grouped into families by their
//! `# TYPE` line (`x_bucket`, `x_sum` and `x_count` belong to histogram `x`); a sample with no
//! `# TYPE` gets an untyped family of its own name.

use std::borrow::Cow;
use std::collections::HashMap;

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition<'a> {
    /// Families in the order they first appear.
    pub families: Vec<Family<'a>>,
}

/// A metric family: its `# HELP`, `# TYPE` and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    pub name: &'a str,
    /// The docstring, unescaped.
    pub help: Option<Cow<'a, str>>,
    pub kind: Kind,
    /// Whether a `# TYPE` line declared the kind.
    pub declared: bool,
    pub samples: Vec<Sample<'a>>,
}

/// The `# TYPE` of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" | "unknown" => Kind::Untyped,
            _ => return None,
        })
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name, e.g. `response_latency_ms_bucket`.
    pub name: &'a str,
    /// Labels in the order written; values unescaped.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// The value as written, so a re-rendered page keeps the proxy's own formatting.
    pub value_text: &'a str,
    /// Milliseconds since the epoch, if the line carries one.
    pub timestamp: Option<i64>,
}

impl Sample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// Where and why the text is not valid exposition format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in bytes.
    pub column: usize,
    pub message: String,
}

/// Parses a whole page.
pub fn parse(text: &str) -> Result<Exposition<'_>, ParseError> {
    let mut parser = Parser::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        parser.line(line).map_err(|(column, message)| ParseError {
            line: index + 1,
            column: column + 1,
            message,
        })?;
    }
    Ok(Exposition {
        families: parser.families,
    })
}

/// A column (0-based byte offset in the line) and a message.
type LineError = (usize, String);

#[derive(Default)]
struct Parser<'a> {
    families: Vec<Family<'a>>,
    /// Family name to index.
    by_name: HashMap<&'a str, usize>,
    /// Sample name (including `_bucket`, `_sum`, `_count` suffixes) to family index, filled
    /// as samples arrive.
    by_sample: HashMap<&'a str, usize>,
}

impl<'a> Parser<'a> {
    fn line(&mut self, line: &'a str) -> Result<(), LineError> {
        let start = line.len() - line.trim_start_matches([' ', '\t']).len();
        let rest = &line[start..];
        if rest.trim_end_matches([' ', '\t']).is_empty() {
            return Ok(());
        }
        if let Some(comment) = rest.strip_prefix('#') {
            return self.comment(line, comment);
        }
        self.sample(line, start)
    }

    fn comment(&mut self, line: &'a str, comment: &'a str) -> Result<(), LineError> {
        let mut cursor = Cursor::new(line, line.len() - comment.len());
        cursor.skip_blanks();
        let keyword = cursor.word();
        if keyword != "HELP" && keyword != "TYPE" {
            // Any other comment is ignored, as Prometheus does.
            return Ok(());
        }
        if !cursor.skip_blanks() {
            return Err(cursor.error(format!("expected a metric name after # {keyword}")));
        }
        let name_at = cursor.at;
        let name = cursor.metric_name()?;
        if keyword == "HELP" {
            let help = if cursor.at_end() {
                ""
            } else {
                if !cursor.skip_blanks() {
                    return Err(cursor.error("expected a space after the metric name".into()));
                }
                cursor.rest()
            };
            let help = unescape(help, false).map_err(|(i, m)| (cursor.at + i, m))?;
            let index = self.family(name);
            if self.families[index].help.is_some() {
                return Err((name_at, format!("second # HELP for {name}")));
            }
            self.families[index].help = Some(help);
            return Ok(());
        }
        if !cursor.skip_blanks() {
            return Err(cursor.error(format!("expected a type after # TYPE {name}")));
        }
        let kind_at = cursor.at;
        let kind_text = cursor.word();
        let kind = Kind::parse(kind_text)
            .ok_or_else(|| (kind_at, format!("unknown metric type {kind_text:?}")))?;
        cursor.skip_blanks();
        if !cursor.at_end() {
            return Err(cursor.error("unexpected text after the metric type".into()));
        }
        let index = self.family(name);
        let family = &mut self.families[index];
        if family.declared {
            return Err((name_at, format!("second # TYPE for {name}")));
        }
        if !family.samples.is_empty() {
            return Err((name_at, format!("# TYPE for {name} after its samples")));
        }
        family.kind = kind;
        family.declared = true;
        Ok(())
    }

    fn family(&mut self, name: &'a str) -> usize {
        if let Some(&index) = self.by_name.get(name) {
            return index;
        }
        let index = self.families.len();
        self.families.push(Family {
            name,
            help: None,
            kind: Kind::Untyped,
            declared: false,
            samples: Vec::new(),
        });
        self.by_name.insert(name, index);
        index
    }

    /// The family a sample name belongs to, creating an untyped one if none claims it.
    fn family_of(&mut self, name: &'a str) -> usize {
        if let Some(&index) = self.by_sample.get(name) {
            return index;
        }
        let claimed = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            let &index = self.by_name.get(base)?;
            let family = &self.families[index];
            let fits = match family.kind {
                Kind::Histogram => true,
                Kind::Summary => *suffix != "_bucket",
                _ => false,
            };
            fits.then_some(index)
        });
        let index = match claimed {
            Some(index) => index,
            None => self.family(name),
        };
        self.by_sample.insert(name, index);
        index
    }

    fn sample(&mut self, line: &'a str, start: usize) -> Result<(), LineError> {
        let mut cursor = Cursor::new(line, start);
        let name = cursor.metric_name()?;
        let mut labels = Vec::new();
        if cursor.peek() == Some(b'{') {
            cursor.at += 1;
            labels = cursor.labels()?;
        }
        if !cursor.skip_blanks() {
            return Err(cursor.error("expected a space before the value".into()));
        }
        let value_at = cursor.at;
        let value_text = cursor.word();
        let value = parse_value(value_text)
            .ok_or_else(|| (value_at, format!("invalid value {value_text:?}")))?;
        let mut timestamp = None;
        if cursor.skip_blanks() && !cursor.at_end() {
            let at = cursor.at;
            let text = cursor.word();
            timestamp = Some(
                text.parse::<i64>()
                    .map_err(|_| (at, format!("invalid timestamp {text:?}")))?,
            );
            cursor.skip_blanks();
        }
        if !cursor.at_end() {
            return Err(cursor.error("unexpected text after the value".into()));
        }
        let index = self.family_of(name);
        self.families[index].samples.push(Sample {
            name,
            labels,
            value,
            value_text,
            timestamp,
        });
        Ok(())
    }
}

/// Reads one line, byte by byte.
struct Cursor<'a> {
    line: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str, at: usize) -> Self {
        Cursor { line, at }
    }

    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.line.len()
    }

    fn rest(&self) -> &'a str {
        &self.line[self.at..]
    }

    fn error(&self, message: String) -> LineError {
        (self.at, message)
    }

    /// Skips spaces and tabs; returns whether there were any.
    fn skip_blanks(&mut self) -> bool {
        let before = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > before
    }

    /// Everything up to the next blank or the end.
    fn word(&mut self) -> &'a str {
        let start = self.at;
        while !matches!(self.peek(), None | Some(b' ' | b'\t')) {
            self.at += 1;
        }
        &self.line[start..self.at]
    }

    fn metric_name(&mut self) -> Result<&'a str, LineError> {
        let start = self.at;
        while let Some(b) = self.peek() {
            let ok = b.is_ascii_alphabetic()
                || b == b'_'
                || b == b':'
                || (self.at > start && b.is_ascii_digit());
            if !ok {
                break;
            }
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("expected a metric name".into()));
        }
        Ok(&self.line[start..self.at])
    }

    fn label_name(&mut self) -> Result<&'a str, LineError> {
        let start = self.at;
        while let Some(b) = self.peek() {
            let ok =
                b.is_ascii_alphabetic() || b == b'_' || (self.at > start && b.is_ascii_digit());
            if !ok {
                break;
            }
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("expected a label name".into()));
        }
        Ok(&self.line[start..self.at])
    }

    /// After `{`: `name="value",…}` with an optional trailing comma.
    fn labels(&mut self) -> Result<Vec<(&'a str, Cow<'a, str>)>, LineError> {
        let mut labels: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(labels);
            }
            let name_at = self.at;
            let name = self.label_name()?;
            self.skip_blanks();
            if self.peek() != Some(b'=') {
                return Err(self.error(format!("expected '=' after label {name}")));
            }
            self.at += 1;
            self.skip_blanks();
            if self.peek() != Some(b'"') {
                return Err(self.error(format!("expected '\"' to open the value of label {name}")));
            }
            self.at += 1;
            let value = self.quoted()?;
            if labels.iter().any(|(n, _)| *n == name) {
                return Err((name_at, format!("label {name} appears twice")));
            }
            labels.push((name, value));
            self.skip_blanks();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected ',' or '}' after a label value".into())),
            }
        }
    }

    /// After the opening quote: the value up to the closing quote, unescaped.
    fn quoted(&mut self) -> Result<Cow<'a, str>, LineError> {
        let start = self.at;
        let bytes = self.line.as_bytes();
        let mut escaped = false;
        loop {
            match bytes.get(self.at) {
                None => return Err((start - 1, "unterminated label value".into())),
                Some(b'\\') => {
                    escaped = true;
                    self.at += 2;
                }
                Some(b'"') => break,
                Some(_) => self.at += 1,
            }
        }
        let raw = &self.line[start..self.at];
        self.at += 1;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw, true).map_err(|(i, m)| (start + i, m))
    }
}

/// Undoes `\\`, `\n` and (in label values) `\"`.
fn unescape(raw: &str, quotes: bool) -> Result<Cow<'_, str>, LineError> {
    if !raw.contains('\\') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '\\')) => out.push('\\'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, '"')) if quotes => out.push('"'),
            Some((_, other)) => {
                if quotes {
                    return Err((i, format!("invalid escape \\{other}")));
                }
                // Docstrings may hold stray backslashes; keep them as written.
                out.push('\\');
                out.push(other);
            }
            None => {
                if quotes {
                    return Err((i, "a backslash ends the label value".into()));
                }
                out.push('\\');
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// A sample value: a float as Go's `ParseFloat` reads it, including `NaN` and `±Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => return Some(f64::INFINITY),
        "-Inf" | "-inf" => return Some(f64::NEG_INFINITY),
        "NaN" | "nan" => return Some(f64::NAN),
        _ => {}
    }
    // Rust accepts "infinity" and "nan" spellings Go does not; those were handled above.
    if text
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    text.parse().ok()
}

/// Writes a page back in the text format: each family's `# HELP` and `# TYPE`, then its
/// samples with labels in their original order and values as the proxy wrote them.
pub fn render(exposition: &Exposition<'_>, out: &mut String) {
    use std::fmt::Write;
    for family in &exposition.families {
        if let Some(help) = &family.help {
            let _ = writeln!(out, "# HELP {} {}", family.name, escape(help, false));
        }
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(sample.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape(value, true));
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(sample.value_text);
            if let Some(ts) = sample.timestamp {
                let _ = write!(out, " {ts}");
            }
            out.push('\n');
        }
    }
}

fn escape(text: &str, quotes: bool) -> Cow<'_, str> {
    if !text.contains(['\\', '\n', '"']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

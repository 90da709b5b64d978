//! What `inject` and `uninject` share: running a transform over every input and assembling one
//! output stream, all in memory before anything is written.

use std::io::{self, Write};

use mesh_inject::{Format, Report, Transformed};

use crate::exit::Failed;
use crate::input::Input;

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format [default: each document as it came in]
    ///
    /// Without this flag YAML stays YAML and JSON stays JSON. With it, documents in the other
    /// format are converted; YAML written this way quotes strings such as "yes" and "on" that
    /// kubectl would otherwise read as booleans.
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    format: Option<OutputFormat>,
}

impl OutputArgs {
    pub fn format(&self) -> Option<Format> {
        self.format.map(|f| match f {
            OutputFormat::Yaml => Format::Yaml,
            OutputFormat::Json => Format::Json,
        })
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

/// The transformed inputs, ready to write.
pub struct Output<'a> {
    parts: Vec<Part<'a>>,
    pub report: Report,
}

enum Part<'a> {
    /// An input with edits to apply as it is written.
    Edited(&'a str, Transformed),
    /// Text to write as it is: a separator, or a re-rendered input.
    Text(String),
}

impl Output<'_> {
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        for part in &self.parts {
            match part {
                Part::Edited(text, transformed) => {
                    for piece in transformed.pieces(text) {
                        out.write_all(piece.as_bytes())?;
                    }
                }
                Part::Text(text) => out.write_all(text.as_bytes())?,
            }
        }
        Ok(())
    }
}

/// Transforms every input. Any failure (bad YAML, a refused object) fails the whole run before
/// anything is written.
pub fn transform<'a, F>(
    inputs: &'a [Input],
    format: Option<Format>,
    f: F,
) -> anyhow::Result<Output<'a>>
where
    F: Fn(&str) -> Result<Transformed, mesh_inject::Error>,
{
    let mut report = Report::default();
    let mut edited = Vec::with_capacity(inputs.len());
    for input in inputs {
        let mut transformed = f(&input.text).map_err(|e| Failed(format!("{}: {e}", input.name)))?;
        report.extend(std::mem::take(&mut transformed.report));
        edited.push((input, transformed));
    }
    let all_json = inputs
        .iter()
        .all(|i| mesh_inject::yaml::looks_like_json(&i.text));
    let any_json = inputs
        .iter()
        .any(|i| mesh_inject::yaml::looks_like_json(&i.text));
    // A stream kubectl reads is all JSON or all YAML: a mix of inputs is written as YAML.
    let format = format.or((any_json && !all_json).then_some(Format::Yaml));
    let json = format == Some(Format::Json) || (format.is_none() && all_json);
    let mut parts = Vec::new();
    let mut previous_tail: Option<String> = None;
    for (input, transformed) in edited {
        let part = match format {
            None => Part::Edited(&input.text, transformed),
            Some(format) => {
                let text = transformed.output(&input.text);
                let rendered = mesh_inject::render_as(&text, format)
                    .map_err(|e| Failed(format!("{}: {e}", input.name)))?;
                Part::Text(rendered)
            }
        };
        let (head, tail) = part.ends();
        if head.is_empty() && tail.is_empty() {
            continue;
        }
        if let Some(prev) = &previous_tail {
            let sep = separator(prev, &head, json);
            if !sep.is_empty() {
                parts.push(Part::Text(sep));
            }
        }
        previous_tail = Some(tail);
        parts.push(part);
    }
    Ok(Output { parts, report })
}

impl Part<'_> {
    /// The first line and the last few bytes of what this part writes.
    fn ends(&self) -> (String, String) {
        const TAIL: usize = 256;
        let pieces: Vec<&str> = match self {
            Part::Edited(text, transformed) => transformed.pieces(text).collect(),
            Part::Text(text) => vec![text.as_str()],
        };
        let mut head = String::new();
        for piece in &pieces {
            match piece.find('\n') {
                Some(i) => {
                    head.push_str(&piece[..i]);
                    break;
                }
                None => head.push_str(piece),
            }
        }
        let mut tail = String::new();
        for piece in pieces.iter().rev() {
            let mut start = piece.len().saturating_sub(TAIL - tail.len().min(TAIL));
            while !piece.is_char_boundary(start) {
                start -= 1;
            }
            tail.insert_str(0, &piece[start..]);
            if tail.len() >= TAIL {
                break;
            }
        }
        (head, tail)
    }
}

/// What goes between two inputs so their documents stay apart.
fn separator(prev_tail: &str, next_first_line: &str, json: bool) -> String {
    let mut sep = String::new();
    if !prev_tail.ends_with('\n') {
        sep.push('\n');
    }
    if json {
        return sep;
    }
    let last_line = prev_tail
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or_default();
    let prev_ends_document = last_line.trim_end() == "---" && prev_tail.ends_with('\n');
    if !prev_ends_document && !next_first_line.starts_with("---") {
        sep.push_str("---\n");
    }
    sep
}

//! Re-rendering documents as YAML or JSON, for `-o yaml|json`.
//!
//! By default mesh writes each document in the format it came in, so nothing needs rendering. An
//! explicit `-o` converts the documents that are in the other format, and only those.

use crate::Error;
use crate::yaml::{self, Node};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Renders every document of `text` in `format`. YAML documents stay as written when the format
/// is YAML; JSON documents (a flow mapping at the root) become block YAML. For JSON, each document
/// becomes one pretty-printed JSON value, and a stream of them is what kubectl reads.
pub fn render_as(text: &str, format: Format) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut ordinal = 0;
    for chunk in yaml::split(text) {
        if !chunk.is_document {
            if format == Format::Yaml {
                out.push_str(&text[chunk.range.clone()]);
            }
            continue;
        }
        ordinal += 1;
        let piece = &text[chunk.range.clone()];
        let roots =
            yaml::parse_chunk(piece, chunk.range.start, chunk.first_line).map_err(|error| {
                Error::Syntax {
                    document: ordinal,
                    error,
                }
            })?;
        match format {
            Format::Json => {
                for root in roots.iter().flatten() {
                    let value = yaml::to_json(text, root).map_err(|error| Error::Syntax {
                        document: ordinal,
                        error,
                    })?;
                    out.push_str(&serde_json::to_string_pretty(&value).unwrap_or_default());
                    out.push('\n');
                }
            }
            Format::Yaml => {
                let json_roots: Vec<&Node<'_>> =
                    roots.iter().flatten().filter(|r| r.is_flow()).collect();
                if json_roots.is_empty() || json_roots.len() != roots.iter().flatten().count() {
                    // Block YAML (or a mix, which only `...` can produce): keep it as written.
                    separate(&mut out, piece);
                    out.push_str(piece);
                    continue;
                }
                for root in json_roots {
                    let value = yaml::to_json(text, root).map_err(|error| Error::Syntax {
                        document: ordinal,
                        error,
                    })?;
                    separate(&mut out, "");
                    out.push_str(&to_yaml(&value));
                }
            }
        }
    }
    Ok(out)
}

/// Serializes a value as block YAML, quoting every string that kubectl could read as something else.
pub fn to_yaml(value: &serde_json::Value) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).unwrap_or_default()
}

/// Starts a new document unless `out` is empty or `next` starts one itself.
fn separate(out: &mut String, next: &str) {
    if out.is_empty() || next.starts_with("---") {
        return;
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let last_line = out[..out.len() - 1].rsplit('\n').next().unwrap_or_default();
    if last_line.trim_end() != "---" {
        out.push_str("---\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stays_as_written() {
        let text = "# note\na: 'x'\n---\nb: 1\n";
        assert_eq!(render_as(text, Format::Yaml).unwrap(), text);
    }

    #[test]
    fn json_documents_become_yaml_with_ambiguous_strings_quoted() {
        let text = "{\"kind\": \"Pod\", \"env\": \"yes\", \"port\": 80}\n";
        let yaml = render_as(text, Format::Yaml).unwrap();
        assert!(yaml.contains("kind: Pod"), "{yaml}");
        assert!(
            yaml.contains("env: \"yes\"") || yaml.contains("env: 'yes'"),
            "{yaml}"
        );
        assert!(yaml.contains("port: 80"), "{yaml}");
    }

    #[test]
    fn yaml_becomes_a_json_stream() {
        let text = "a: 1\n---\n\n---\nb: [x]\n";
        assert_eq!(
            render_as(text, Format::Json).unwrap(),
            "{\n  \"a\": 1\n}\n{\n  \"b\": [\n    \"x\"\n  ]\n}\n"
        );
    }

    #[test]
    fn mixed_streams_get_separators() {
        let text = "a: 1\n---\n{\"b\": 2}\n";
        assert_eq!(render_as(text, Format::Yaml).unwrap(), "a: 1\n---\nb: 2\n");
    }
}

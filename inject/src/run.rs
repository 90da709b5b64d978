//! Running a transform over a whole stream, in parallel for large inputs.

use std::ops::Range;

use crate::report::{Entry, Report};
use crate::transform::{self, Mode};
use crate::yaml::{self, Chunk, EditList, Editor};
use crate::{Error, Options};

/// The result of transforming a stream: edits to apply to it, and the report.
#[derive(Debug, Clone, Default)]
pub struct Transformed {
    pub edits: EditList,
    pub report: Report,
}

impl Transformed {
    /// The output text, in pieces, for writing without building one large string.
    pub fn pieces<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edits.pieces(text)
    }

    /// The output text as one string.
    pub fn output(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + self.edits.len() * 32);
        self.pieces(text).for_each(|p| out.push_str(p));
        out
    }
}

/// Adds `linkerd.io/inject` (and any settings) to every workload, pod and namespace in `text`.
pub fn inject(text: &str, options: &Options) -> Result<Transformed, Error> {
    run(text, Mode::Inject(options))
}

/// Removes what [`inject`] added.
pub fn uninject(text: &str) -> Result<Transformed, Error> {
    run(text, Mode::Uninject { keep_inject: false })
}

/// Inputs above this size are split across threads.
const PARALLEL_THRESHOLD: usize = 1 << 20;

fn run(text: &str, mode: Mode<'_>) -> Result<Transformed, Error> {
    let chunks = yaml::split(text);
    // Number the documents as a reader counts them.
    let mut ordinals = Vec::with_capacity(chunks.len());
    let mut next = 1;
    for chunk in &chunks {
        ordinals.push(next);
        next += usize::from(chunk.is_document);
    }
    let workers = if text.len() >= PARALLEL_THRESHOLD {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        1
    };
    let slices = balance(&chunks, workers);
    if slices.len() <= 1 {
        return transform_chunks(text, &chunks, &ordinals, mode);
    }
    let results: Vec<Result<Transformed, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = slices
            .into_iter()
            .map(|range| {
                let (chunks, ordinals) = (&chunks[range.clone()], &ordinals[range]);
                scope.spawn(move || transform_chunks(text, chunks, ordinals, mode))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all = Transformed::default();
    for result in results {
        let part = result?;
        all.edits.append(part.edits);
        all.report.extend(part.report);
    }
    Ok(all)
}

fn transform_chunks(
    text: &str,
    chunks: &[Chunk],
    ordinals: &[usize],
    mode: Mode<'_>,
) -> Result<Transformed, Error> {
    let mut out = Transformed::default();
    for (chunk, &document) in chunks.iter().zip(ordinals) {
        if !chunk.is_document {
            continue;
        }
        let roots = yaml::parse_chunk(
            &text[chunk.range.clone()],
            chunk.range.start,
            chunk.first_line,
        )
        .map_err(|error| Error::Syntax { document, error })?;
        if roots.is_empty() {
            out.report.entries.push(Entry::MissingKind);
        }
        let manual = matches!(mode, Mode::Inject(o) if o.manual.is_some());
        if manual && roots.iter().flatten().any(transform::has_injected_pod) {
            // Injected already: take the sidecar out, then put it back as configured now, so
            // that injecting twice gives the same bytes as injecting once.
            let piece = &text[chunk.range.clone()];
            let plain = run(piece, Mode::Uninject { keep_inject: true })
                .map_err(|e| e.shift_document(document - 1))?
                .output(piece);
            let again = run(&plain, mode).map_err(|e| e.shift_document(document - 1))?;
            out.edits.extend([yaml::Edit {
                range: chunk.range.clone(),
                text: again.output(&plain),
            }]);
            out.report.extend(again.report);
            continue;
        }
        for (i, root) in roots.iter().enumerate() {
            let Some(root) = root else {
                out.report.entries.push(Entry::MissingKind);
                continue;
            };
            let mut editor = Editor::new(text, root, root.is_flow());
            transform::object(&mut editor, root, mode, document + i, &mut out.report)?;
            out.edits.extend(editor.into_edits());
        }
    }
    Ok(out)
}

/// Splits `chunks` into at most `workers` contiguous runs of roughly equal size in bytes.
fn balance(chunks: &[Chunk], workers: usize) -> Vec<Range<usize>> {
    let total: usize = chunks.iter().map(|c| c.range.len()).sum();
    let share = total.div_ceil(workers.max(1)).max(1);
    let mut slices = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, chunk) in chunks.iter().enumerate() {
        size += chunk.range.len();
        if size >= share {
            slices.push(start..i + 1);
            (start, size) = (i + 1, 0);
        }
    }
    if start < chunks.len() {
        slices.push(start..chunks.len());
    }
    slices
}

//! Check results and their three renderings: Linkerd's table, its JSON schema, and `short`.

use std::io::{self, Write};

use serde_json::{Value, json};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Warning,
    Error,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub description: String,
    pub outcome: Outcome,
    /// What is wrong, one fact per line.
    pub error: Option<String>,
    /// What to do about it: a URL or a sentence.
    pub hint: Option<String>,
    /// Extra facts shown with `--verbose`, e.g. how many pods were looked at.
    pub detail: Option<String>,
    /// Whether waiting could fix it: pods becoming ready, rollouts finishing.
    pub retryable: bool,
}

impl Check {
    pub fn pass(description: impl Into<String>) -> Check {
        Check {
            description: description.into(),
            outcome: Outcome::Success,
            error: None,
            hint: None,
            detail: None,
            retryable: false,
        }
    }

    pub fn fail(
        description: impl Into<String>,
        error: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            outcome: Outcome::Error,
            error: Some(error.into()),
            hint: Some(hint.into()),
            ..Check::pass(description)
        }
    }

    pub fn warn(
        description: impl Into<String>,
        error: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            outcome: Outcome::Warning,
            ..Check::fail(description, error, hint)
        }
    }

    pub fn retryable(mut self) -> Check {
        self.retryable = true;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Check {
        self.detail = Some(detail.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: &'static str,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub categories: Vec<Category>,
}

impl Report {
    pub fn push(&mut self, name: &'static str, checks: Vec<Check>) {
        if !checks.is_empty() {
            self.categories.push(Category { name, checks });
        }
    }

    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.categories.iter().flat_map(|c| c.checks.iter())
    }

    /// No check failed; warnings are fine.
    pub fn success(&self) -> bool {
        self.checks().all(|c| c.outcome != Outcome::Error)
    }

    /// The failures are all of the kind that time can fix, so `--wait` should try again.
    pub fn worth_retrying(&self) -> bool {
        let mut failures = self
            .checks()
            .filter(|c| c.outcome == Outcome::Error)
            .peekable();
        failures.peek().is_some() && failures.all(|c| c.retryable)
    }

    /// The first failed check, for the `--wait` spinner.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks().find(|c| c.outcome == Outcome::Error)
    }
}

/// The output formats of `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Short,
}

pub fn render(
    report: &Report,
    format: Format,
    verbose: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => table(report, verbose, false, out),
        Format::Short => table(report, verbose, true, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &to_json(report))?;
            writeln!(out)
        }
    }
}

fn symbol(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "√",
        Outcome::Warning => "‼",
        Outcome::Error => "×",
    }
}

fn table(report: &Report, verbose: bool, short: bool, out: &mut dyn Write) -> io::Result<()> {
    for category in &report.categories {
        let shown: Vec<&Check> = category
            .checks
            .iter()
            .filter(|c| !short || c.outcome != Outcome::Success)
            .collect();
        if shown.is_empty() {
            continue;
        }
        writeln!(out, "{}", category.name)?;
        writeln!(out, "{}", "-".repeat(category.name.chars().count()))?;
        for check in shown {
            writeln!(out, "{} {}", symbol(check.outcome), check.description)?;
            if check.outcome == Outcome::Success {
                if let (true, Some(detail)) = (verbose, &check.detail) {
                    for line in detail.lines() {
                        writeln!(out, "    {line}")?;
                    }
                }
                continue;
            }
            for line in check.error.iter().flat_map(|e| e.lines()) {
                writeln!(out, "    {line}")?;
            }
            if let Some(hint) = &check.hint {
                if hint.starts_with("https://") {
                    writeln!(out, "    see {hint} for hints")?;
                } else {
                    for line in hint.lines() {
                        writeln!(out, "    {line}")?;
                    }
                }
            }
        }
        writeln!(out)?;
    }
    let mark = if report.success() { "√" } else { "×" };
    writeln!(out, "Status check results are {mark}")
}

/// Linkerd's `-o json` schema.
pub fn to_json(report: &Report) -> Value {
    let categories: Vec<Value> = report
        .categories
        .iter()
        .map(|category| {
            let checks: Vec<Value> = category
                .checks
                .iter()
                .map(|check| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("description".into(), json!(check.description));
                    if check.outcome != Outcome::Success {
                        if let Some(hint) = &check.hint {
                            entry.insert("hint".into(), json!(hint));
                        }
                        if let Some(error) = &check.error {
                            entry.insert("error".into(), json!(error));
                        }
                    }
                    let result = match check.outcome {
                        Outcome::Success => "success",
                        Outcome::Warning => "warning",
                        Outcome::Error => "error",
                    };
                    entry.insert("result".into(), json!(result));
                    Value::Object(entry)
                })
                .collect();
            json!({ "categoryName": category.name, "checks": checks })
        })
        .collect();
    json!({ "success": report.success(), "categories": categories })
}

//! What happened to each object, in the format Linkerd users know.

use std::fmt::Write;

/// What a run did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `deployment "web" injected`
    Object {
        /// The kind, lowercased as Linkerd prints it.
        kind: String,
        name: String,
        outcome: Outcome,
    },
    /// A document with no `kind`, such as an empty one.
    MissingKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Injected,
    Uninjected,
    Annotated,
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Uninjected => "uninjected",
            Outcome::Annotated => "annotated",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Something the user should know that did not stop the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The workload opts out with `linkerd.io/inject: disabled`, so it was left alone.
    InjectDisabled { kind: String, name: String },
    /// The pod listens on UDP, which the proxy does not carry.
    Udp { kind: String, name: String },
}

impl Warning {
    fn check(&self) -> Check {
        match self {
            Warning::InjectDisabled { .. } => Check::NotDisabled,
            Warning::Udp { .. } => Check::NoUdp,
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::InjectDisabled { kind, name } => {
                write!(
                    f,
                    "\"linkerd.io/inject: disabled\" annotation set on {kind}/{name}"
                )
            }
            Warning::Udp { kind, name } => write!(f, "{kind}/{name} uses \"protocol: UDP\""),
        }
    }
}

/// The checks `--verbose` lists, in Linkerd's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    NoHostNetwork,
    NoSidecar,
    NotDisabled,
    Supported,
    NoUdp,
    Token,
}

impl Check {
    const ALL: [Check; 6] = [
        Check::NoHostNetwork,
        Check::NoSidecar,
        Check::NotDisabled,
        Check::Supported,
        Check::NoUdp,
        Check::Token,
    ];

    fn description(self) -> &'static str {
        match self {
            Check::NoHostNetwork => "pods do not use host networking",
            Check::NoSidecar => {
                "pods do not have a 3rd party proxy or initContainer already injected"
            }
            Check::NotDisabled => "pods are not annotated to disable injection",
            Check::Supported => "at least one resource can be injected or annotated",
            Check::NoUdp => "pod specs do not include UDP ports",
            Check::Token => {
                "pods do not have automountServiceAccountToken set to \"false\" or service account token projection is enabled"
            }
        }
    }
}

/// The report of one run over any number of inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub entries: Vec<Entry>,
    pub warnings: Vec<Warning>,
    /// Whether any object was of a kind that can be injected or annotated.
    pub supported: bool,
}

const NO_SUPPORTED: &str = "no supported objects found";

impl Report {
    pub fn extend(&mut self, other: Report) {
        self.entries.extend(other.entries);
        self.warnings.extend(other.warnings);
        self.supported |= other.supported;
    }

    /// The stderr report of `mesh inject`: warnings (or, verbose, every check), then one line per
    /// object.
    pub fn render_inject(&self, verbose: bool) -> String {
        let mut out = String::from("\n");
        if verbose {
            for check in Check::ALL {
                let warnings: Vec<String> = self.warning_lines(check);
                if warnings.is_empty() {
                    let _ = writeln!(out, "√ {}", check.description());
                } else {
                    warnings.iter().for_each(|w| out.push_str(w));
                }
            }
            out.push('\n');
        } else {
            let warnings: Vec<String> = Check::ALL
                .iter()
                .flat_map(|&c| self.warning_lines(c))
                .collect();
            if !warnings.is_empty() {
                warnings.iter().for_each(|w| out.push_str(w));
                out.push('\n');
            }
        }
        self.render_entries(&mut out);
        out
    }

    /// The stderr report of `mesh uninject`: one line per object.
    pub fn render_uninject(&self) -> String {
        let mut out = String::from("\n");
        self.render_entries(&mut out);
        out
    }

    fn warning_lines(&self, check: Check) -> Vec<String> {
        let mut lines: Vec<String> = self
            .warnings
            .iter()
            .filter(|w| w.check() == check)
            .map(|w| format!("‼ {w}\n"))
            .collect();
        if check == Check::Supported && !self.supported {
            lines.push(format!("‼ {NO_SUPPORTED}\n"));
        }
        lines
    }

    fn render_entries(&self, out: &mut String) {
        for entry in &self.entries {
            match entry {
                Entry::Object {
                    kind,
                    name,
                    outcome,
                } => {
                    let _ = writeln!(out, "{kind} \"{name}\" {}", outcome.as_str());
                }
                Entry::MissingKind => out.push_str("document missing \"kind\" field, skipped\n"),
            }
        }
        out.push('\n');
    }
}

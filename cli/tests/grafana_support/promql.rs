//! Checks a PromQL query against what the proxy exports and the scrape config adds.
//!
//! The query is parsed with `promql-parser`, then walked while tracking which labels each
//! sub-expression's series carry, as Prometheus computes them: a selector has its metric's
//! labels and the target's; `sum by (a)` leaves `a`; `histogram_quantile` drops `le`; a
//! one-to-one binary operation needs both sides to carry the same labels. That catches a
//! metric the proxy does not export, a label it does not have, a value it never writes (for
//! `label="literal"`), a grouping by a label an inner aggregation already dropped, and a
//! division whose sides can never match.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    self, AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorMatchCardinality,
    VectorSelector,
};

use super::exposition::Exported;
use super::relabel::LabelSet;

/// Labels a series may carry, or `None` for a scalar.
pub type Carried = Option<BTreeSet<String>>;

/// Sub-expressions deeper than this are refused rather than walked.
const MAX_DEPTH: usize = 64;

/// What the series of one scrape job look like.
pub struct Schema<'a> {
    pub exported: &'a Exported,
    /// The labels the scrape config adds to every series (target labels), with their values.
    pub target: &'a LabelSet,
}

/// Grafana's interval variables, replaced by a duration so the query parses.
const INTERVALS: &[&str] = &[
    "${__rate_interval}",
    "$__rate_interval",
    "${__interval}",
    "$__interval",
    "${__range}",
    "$__range",
];

/// The query as Prometheus would receive it (template variables in label values are left in
/// place: they are strings to the parser).
pub fn substitute(expr: &str) -> String {
    let mut out = expr.to_string();
    for v in INTERVALS {
        out = out.replace(v, "5m");
    }
    out
}

pub fn parse(expr: &str) -> Result<Expr, String> {
    parser::parse(&substitute(expr)).map_err(|e| format!("does not parse: {e}"))
}

impl Schema<'_> {
    /// Checks `expr`; returns the labels its result carries, or every problem found.
    pub fn check(&self, expr: &str) -> Result<Carried, Vec<String>> {
        let ast = parse(expr).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let carried = self.walk(&ast, 0, &mut errors);
        if errors.is_empty() {
            Ok(carried)
        } else {
            Err(errors)
        }
    }

    /// Checks Grafana's `label_values(SELECTOR, LABEL)`.
    pub fn check_label_values(&self, query: &str) -> Result<(), Vec<String>> {
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .ok_or_else(|| vec![format!("not label_values(…): {query}")])?;
        let (selector, label) = inner
            .rsplit_once(',')
            .ok_or_else(|| vec![format!("label_values without a selector: {query}")])?;
        let carried = self.check(selector)?;
        let label = label.trim();
        match carried {
            Some(labels) if labels.contains(label) => Ok(()),
            _ => Err(vec![format!(
                "label_values asks for {label}, which {} does not carry",
                selector.trim()
            )]),
        }
    }

    fn walk(&self, expr: &Expr, depth: usize, errors: &mut Vec<String>) -> Carried {
        if depth > MAX_DEPTH {
            errors.push(format!("nested deeper than {MAX_DEPTH}"));
            return None;
        }
        let d = depth + 1;
        match expr {
            Expr::VectorSelector(vs) => Some(self.selector(vs, errors)),
            Expr::MatrixSelector(ms) => Some(self.selector(&ms.vs, errors)),
            Expr::Aggregate(agg) => self.aggregate(agg, d, errors),
            Expr::Binary(bin) => self.binary(bin, d, errors),
            Expr::Call(call) => self.call(call, d, errors),
            Expr::Paren(p) => self.walk(&p.expr, d, errors),
            Expr::Unary(u) => self.walk(&u.expr, d, errors),
            Expr::Subquery(s) => self.walk(&s.expr, d, errors),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => None,
            Expr::Extension(_) => {
                errors.push("an extension expression".into());
                None
            }
        }
    }

    fn selector(&self, vs: &VectorSelector, errors: &mut Vec<String>) -> BTreeSet<String> {
        let Some(name) = &vs.name else {
            errors.push(format!("selector {vs} names no metric"));
            return BTreeSet::new();
        };
        let Some(labels) = self.exported.labels(name) else {
            errors.push(format!("metric {name} is not exported by the proxy"));
            return self.target.keys().cloned().collect();
        };
        let matchers = vs
            .matchers
            .matchers
            .iter()
            .chain(vs.matchers.or_matchers.iter().flatten());
        for m in matchers {
            self.matcher(name, labels, m, errors);
        }
        labels.keys().chain(self.target.keys()).cloned().collect()
    }

    fn matcher(
        &self,
        metric: &str,
        labels: &BTreeMap<String, BTreeSet<String>>,
        m: &Matcher,
        errors: &mut Vec<String>,
    ) {
        if m.name == "__name__" {
            return;
        }
        let seen: Option<BTreeSet<&str>> = match (labels.get(&m.name), self.target.get(&m.name)) {
            (Some(values), _) => Some(values.iter().map(String::as_str).collect()),
            (None, Some(value)) => Some(BTreeSet::from([value.as_str()])),
            (None, None) => None,
        };
        let Some(seen) = seen else {
            errors.push(format!(
                "{metric} has no label {} (neither exported nor added by the scrape config)",
                m.name
            ));
            return;
        };
        // A literal the series never carry selects nothing; template variables are not known.
        if matches!(m.op, MatchOp::Equal)
            && !m.value.contains('$')
            && !seen.contains(m.value.as_str())
        {
            errors.push(format!(
                "{metric}{{{}=\"{}\"}} matches nothing: seen values {seen:?}",
                m.name, m.value
            ));
        }
    }

    fn aggregate(&self, agg: &AggregateExpr, d: usize, errors: &mut Vec<String>) -> Carried {
        let inner = self.walk(&agg.expr, d, errors).unwrap_or_default();
        if let Some(param) = &agg.param {
            self.walk(param, d, errors);
        }
        let op = agg.op.to_string();
        let grouping = match &agg.modifier {
            Some(LabelModifier::Include(by)) => {
                for l in &by.labels {
                    if !inner.contains(l) {
                        errors.push(format!(
                            "{op} by ({l}): the aggregated series do not carry {l}"
                        ));
                    }
                }
                by.labels.iter().cloned().collect()
            }
            Some(LabelModifier::Exclude(without)) => {
                let mut kept = inner.clone();
                for l in &without.labels {
                    kept.remove(l);
                }
                kept
            }
            None => BTreeSet::new(),
        };
        Some(match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => inner,
            "count_values" => {
                let mut out = grouping;
                if let Some(param) = &agg.param
                    && let Expr::StringLiteral(s) = param.as_ref()
                {
                    out.insert(s.val.clone());
                }
                out
            }
            _ => grouping,
        })
    }

    fn binary(&self, bin: &BinaryExpr, d: usize, errors: &mut Vec<String>) -> Carried {
        let lhs = self.walk(&bin.lhs, d, errors);
        let rhs = self.walk(&bin.rhs, d, errors);
        let (l, r) = match (lhs, rhs) {
            (Some(l), Some(r)) => (l, r),
            (Some(v), None) | (None, Some(v)) => return Some(v),
            (None, None) => return None,
        };
        let op = bin.op.to_string();
        let modifier = bin.modifier.as_ref();
        let card = modifier.map(|m| &m.card);
        let on = modifier.and_then(|m| m.matching.as_ref());
        // Without group_left/right, each series must find one with the same labels.
        let one_to_one = !bin.op.is_set_operator()
            && matches!(card, None | Some(VectorMatchCardinality::OneToOne));
        match on {
            Some(LabelModifier::Include(on)) => {
                for label in &on.labels {
                    if !l.contains(label) || !r.contains(label) {
                        errors.push(format!("{op} on ({label}): both sides must carry {label}"));
                    }
                }
            }
            Some(LabelModifier::Exclude(ignoring)) => {
                let strip = |s: &BTreeSet<String>| {
                    let mut s = s.clone();
                    for label in &ignoring.labels {
                        s.remove(label);
                    }
                    s
                };
                if one_to_one && strip(&l) != strip(&r) {
                    errors.push(format!(
                        "{op} ignoring(…): sides carry different labels {l:?} and {r:?}"
                    ));
                }
            }
            None => {
                if one_to_one && l != r {
                    errors.push(format!(
                        "{op}: one-to-one match between series with different labels {l:?} and {r:?}"
                    ));
                }
            }
        }
        Some(match card {
            Some(VectorMatchCardinality::ManyToOne(include)) => {
                l.iter().chain(&include.labels).cloned().collect()
            }
            Some(VectorMatchCardinality::OneToMany(include)) => {
                r.iter().chain(&include.labels).cloned().collect()
            }
            _ if op == "or" => l.union(&r).cloned().collect(),
            _ if bin.op.is_set_operator() => l,
            _ => match on {
                Some(LabelModifier::Include(on)) => on.labels.iter().cloned().collect(),
                Some(LabelModifier::Exclude(ignoring)) => {
                    let mut kept = l;
                    for label in &ignoring.labels {
                        kept.remove(label);
                    }
                    kept
                }
                None => l,
            },
        })
    }

    fn call(&self, call: &Call, d: usize, errors: &mut Vec<String>) -> Carried {
        let args: Vec<Carried> = call
            .args
            .args
            .iter()
            .map(|a| self.walk(a, d, errors))
            .collect();
        let name = call.func.name;
        match name {
            "histogram_quantile" => {
                let mut labels = args.get(1).cloned().flatten().unwrap_or_default();
                if !labels.remove("le") {
                    errors.push("histogram_quantile over series without le".into());
                }
                Some(labels)
            }
            "time" | "vector" | "scalar" | "pi" => None,
            "label_replace" | "label_join" => {
                let mut labels = args.first().cloned().flatten().unwrap_or_default();
                if let Some(dst) = call.args.args.get(1)
                    && let Expr::StringLiteral(s) = dst.as_ref()
                {
                    labels.insert(s.val.clone());
                }
                Some(labels)
            }
            _ => args.into_iter().flatten().next(),
        }
    }
}

/// The labels `{{name}}` in a legend refers to.
pub fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        out.push(rest[start + 2..start + end].trim().to_string());
        rest = &rest[start + end + 2..];
    }
    out
}

//! Delegation: what a logical name becomes under a dtab, with Finagle's semantics.
//!
//! - A path is looked up against every dentry whose prefix it starts with (`*` matches any
//!   one segment). The last such dentry is tried first; when its tree resolves negative, the
//!   one before it, and so on, as if the trees were alternatives of one `|`. The path's
//!   segments after the prefix (the residual) are appended to every path in the tree.
//! - `/#/io.l5d.fs/<name>[/…]` is bound by the file namer: the file `<name>` exists, or the
//!   path is negative. Any other path is delegated again.
//! - `a | b`: the first alternative that is not negative; `!` stops there and fails.
//! - `w1 * a & w2 * b`: every branch that resolves, its weight normalised among those
//!   branches and multiplied into nested unions; negative and failed branches drop out (a
//!   union of nothing but those is negative, or failed if one failed). Branches that all
//!   weigh 0 share equally.
//! - `$` is a destination with no endpoints; `~` negative; `!` failure.
//!
//! Evaluation runs on an explicit work stack, so no input can deepen the call stack, and is
//! bounded: [`MAX_DEPTH`] delegations along one branch (Finagle's `Namer.MaxDepth`, which
//! also ends a rule such as `/svc => /svc`), [`MAX_STEPS`] nodes, [`MAX_SCANS`] dentries
//! compared, and [`MAX_PATH_BYTES`] per path. Past a bound the whole evaluation is an error,
//! as Finagle's "max recursion level reached" is, not a negative that would fall back.

use std::rc::Rc;

use crate::dtab::{Dtab, NameTree, Prefix, PrefixElem};

/// Delegations along one branch before evaluation gives up.
pub const MAX_DEPTH: usize = 100;
/// Tree nodes evaluated for one name.
pub const MAX_STEPS: usize = 10_000;
/// Dentries compared with paths for one name.
pub const MAX_SCANS: usize = 1_000_000;
/// The longest path, its segments' bytes plus one per segment.
pub const MAX_PATH_BYTES: usize = 4096;

/// The first segments of a path the file namer binds.
pub const FS_NAMER: [&[u8]; 2] = [b"#", b"io.l5d.fs"];

/// What a name resolved to.
#[derive(Clone, Debug, PartialEq)]
pub enum Delegation {
    /// Nothing: no dentry matched, `~`, or every file named is missing.
    Neg,
    /// `!`.
    Fail,
    /// Destinations and their shares of traffic, which sum to 1. A destination appears once.
    Bound(Vec<Share>),
}

/// One destination of a [`Delegation::Bound`].
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub target: Target,
    pub weight: f64,
}

/// A bound destination.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `/#/io.l5d.fs/<name>`: the file `<name>`, which exists.
    File(String),
    /// `$`.
    Empty,
}

/// Evaluation went past a bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DelegateError {
    #[error("delegation is deeper than {MAX_DEPTH} steps (does a rule loop?)")]
    TooDeep,
    #[error(
        "delegation visits more than {MAX_STEPS} nodes or compares more than {MAX_SCANS} rules"
    )]
    TooLarge,
    #[error("a delegated path is longer than {MAX_PATH_BYTES} bytes")]
    PathTooLong,
}

/// Delegates `path` through `dtab`. `exists(name)` says whether the file namer has the file
/// `name`; it is asked only for names that are one plain path segment (see [`file_name`]).
pub fn delegate(
    dtab: &Dtab,
    path: &[Vec<u8>],
    exists: &mut dyn FnMut(&str) -> bool,
) -> Result<Delegation, DelegateError> {
    let mut eval = Eval {
        dtab,
        exists,
        steps: 0,
        scans: 0,
    };
    let top = Node::Path {
        path: checked(path.to_vec())?,
        depth: 0,
    };
    let mut tasks = vec![Task::Eval(top)];
    let mut results: Vec<Delegation> = Vec::new();
    while let Some(task) = tasks.pop() {
        eval.steps += 1;
        if eval.steps > MAX_STEPS {
            return Err(DelegateError::TooLarge);
        }
        match task {
            Task::Eval(node) => eval.node(node, &mut tasks, &mut results)?,
            Task::Alt(mut rest) => {
                // The previous alternative's result is on top.
                if results.last() == Some(&Delegation::Neg) && !rest.is_empty() {
                    results.pop();
                    let next = rest.remove(0);
                    tasks.push(Task::Alt(rest));
                    tasks.push(Task::Eval(next));
                }
            }
            Task::Union(weights) => {
                let at = results.len().saturating_sub(weights.len());
                let branches = results.split_off(at);
                results.push(union(&weights, branches));
            }
        }
    }
    Ok(merge(results.pop().unwrap_or(Delegation::Neg)))
}

/// The file a segment names, if it can name one in the namer's directory: UTF-8, not
/// starting with `.` (no `..`, and not Kubernetes' `..data` links), no `/` or NUL.
pub fn file_name(segment: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(segment).ok()?;
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0']);
    plain.then_some(name)
}

/// What to evaluate.
enum Node<'a> {
    /// A dentry's tree, with the residual its paths get.
    Tree {
        tree: &'a NameTree,
        residual: Rc<[Vec<u8>]>,
        depth: usize,
    },
    /// A path to bind or delegate.
    Path { path: Vec<Vec<u8>>, depth: usize },
}

enum Task<'a> {
    /// Evaluate a node: one result is pushed, at once or after the tasks it pushes.
    Eval(Node<'a>),
    /// After an alternative: if it was negative, evaluate the next of these.
    Alt(Vec<Node<'a>>),
    /// After a union's branches: combine their results (the top ones, in order).
    Union(Vec<f64>),
}

struct Eval<'a, 'e> {
    dtab: &'a Dtab,
    exists: &'e mut dyn FnMut(&str) -> bool,
    steps: usize,
    scans: usize,
}

impl<'a> Eval<'a, '_> {
    fn node(
        &mut self,
        node: Node<'a>,
        tasks: &mut Vec<Task<'a>>,
        results: &mut Vec<Delegation>,
    ) -> Result<(), DelegateError> {
        let (tree, residual, depth) = match node {
            Node::Path { path, depth } => return self.path(path, depth, tasks, results),
            Node::Tree {
                tree,
                residual,
                depth,
            } => (tree, residual, depth),
        };
        let sub = |tree| Node::Tree {
            tree,
            residual: residual.clone(),
            depth,
        };
        match tree {
            NameTree::Leaf(path) => {
                let mut full = path.segments().to_vec();
                full.extend(residual.iter().cloned());
                tasks.push(Task::Eval(Node::Path {
                    path: checked(full)?,
                    depth,
                }));
            }
            NameTree::Neg => results.push(Delegation::Neg),
            NameTree::Fail => results.push(Delegation::Fail),
            NameTree::Empty => results.push(bound(Target::Empty)),
            NameTree::Alt(trees) => alternatives(trees.iter().map(sub).collect(), tasks, results),
            NameTree::Union(branches) if branches.is_empty() => results.push(Delegation::Neg),
            NameTree::Union(branches) => {
                tasks.push(Task::Union(branches.iter().map(|b| b.weight).collect()));
                // Pushed last first, so they are evaluated, and their results stacked, in order.
                for branch in branches.iter().rev() {
                    tasks.push(Task::Eval(sub(&branch.tree)));
                }
            }
        }
        Ok(())
    }

    fn path(
        &mut self,
        path: Vec<Vec<u8>>,
        depth: usize,
        tasks: &mut Vec<Task<'a>>,
        results: &mut Vec<Delegation>,
    ) -> Result<(), DelegateError> {
        if path.len() >= 2 && path[0] == FS_NAMER[0] && path[1] == FS_NAMER[1] {
            let found = path
                .get(2)
                .and_then(|s| file_name(s))
                .filter(|name| (self.exists)(name));
            results.push(match found {
                Some(name) => bound(Target::File(name.to_owned())),
                None => Delegation::Neg,
            });
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Err(DelegateError::TooDeep);
        }
        self.scans += self.dtab.0.len();
        if self.scans > MAX_SCANS {
            return Err(DelegateError::TooLarge);
        }
        let residual = |len: usize| -> Rc<[Vec<u8>]> { path.get(len..).unwrap_or_default().into() };
        // The last matching dentry first.
        let matching: Vec<Node<'a>> = self
            .dtab
            .0
            .iter()
            .rev()
            .filter(|d| matches(&d.prefix, &path))
            .map(|d| Node::Tree {
                tree: &d.tree,
                residual: residual(d.prefix.elems().len()),
                depth: depth + 1,
            })
            .collect();
        alternatives(matching, tasks, results);
        Ok(())
    }
}

/// Evaluates the first of `nodes`, and the next ones while they are negative.
fn alternatives<'a>(
    mut nodes: Vec<Node<'a>>,
    tasks: &mut Vec<Task<'a>>,
    results: &mut Vec<Delegation>,
) {
    if nodes.is_empty() {
        results.push(Delegation::Neg);
        return;
    }
    let first = nodes.remove(0);
    if !nodes.is_empty() {
        tasks.push(Task::Alt(nodes));
    }
    tasks.push(Task::Eval(first));
}

fn bound(target: Target) -> Delegation {
    Delegation::Bound(vec![Share {
        target,
        weight: 1.0,
    }])
}

fn matches(prefix: &Prefix, path: &[Vec<u8>]) -> bool {
    let elems = prefix.elems();
    elems.len() <= path.len()
        && elems.iter().zip(path).all(|(e, s)| match e {
            PrefixElem::Any => true,
            PrefixElem::Label(label) => label == s,
        })
}

fn checked(path: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, DelegateError> {
    let bytes: usize = path.iter().map(|s| s.len() + 1).sum();
    if bytes > MAX_PATH_BYTES {
        return Err(DelegateError::PathTooLong);
    }
    Ok(path)
}

/// Combines a union's branch results (see the module docs).
fn union(weights: &[f64], branches: Vec<Delegation>) -> Delegation {
    let mut failed = false;
    let mut resolved = Vec::new();
    for (&weight, branch) in weights.iter().zip(branches) {
        match branch {
            Delegation::Neg => {}
            Delegation::Fail => failed = true,
            Delegation::Bound(shares) => resolved.push((weight, shares)),
        }
    }
    if resolved.is_empty() {
        return if failed {
            Delegation::Fail
        } else {
            Delegation::Neg
        };
    }
    let total: f64 = resolved.iter().map(|(w, _)| w).sum();
    let count = resolved.len() as f64;
    let mut shares = Vec::new();
    for (weight, branch) in resolved {
        let factor = if total > 0.0 {
            weight / total
        } else {
            1.0 / count
        };
        shares.extend(branch.into_iter().map(|s| Share {
            target: s.target,
            weight: s.weight * factor,
        }));
    }
    Delegation::Bound(shares)
}

/// One share per destination (a file reached by two branches gets both shares), in the
/// order first reached; destinations with no share at all are dropped.
fn merge(result: Delegation) -> Delegation {
    let Delegation::Bound(shares) = result else {
        return result;
    };
    let mut merged: Vec<Share> = Vec::with_capacity(shares.len());
    let mut index: std::collections::HashMap<Target, usize> = std::collections::HashMap::new();
    for share in shares {
        match index.get(&share.target) {
            Some(&i) => {
                if let Some(m) = merged.get_mut(i) {
                    m.weight += share.weight;
                }
            }
            None => {
                index.insert(share.target.clone(), merged.len());
                merged.push(share);
            }
        }
    }
    merged.retain(|s| s.weight > 0.0);
    Delegation::Bound(merged)
}

//! Service profiles: a logical target's routes, with their retry and timeout settings.
//!
//! The control plane sends them (`GetProfile`); they decide which requests may be retried,
//! how long one may take, and which responses count as failures.
//!
//! Route conditions are trees (`all`, `any`, `not` over method and path matches) that a
//! peer writes. They are kept as postfix programs evaluated over an explicit stack, so
//! neither building nor evaluating one recurses, however deep the tree.

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

/// A target's profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// The first route whose condition matches a request is its route.
    pub routes: Vec<Route>,
    /// How much extra load retries may add.
    pub retry_budget: RetryBudget,
    /// Connections to the target are opaque TCP: no protocol detection, no HTTP routes.
    pub opaque_protocol: bool,
    /// The service's name when the target was looked up by address
    /// (`web.ns.svc.cluster.local`, without a port).
    pub fully_qualified_name: Option<Arc<str>>,
}

impl Profile {
    /// The route a request belongs to: the first whose condition matches.
    pub fn route_for(&self, method: &http::Method, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| route.condition.matches(method, path))
    }
}

/// One route of a profile.
#[derive(Clone, Debug)]
pub struct Route {
    /// The route's name (its `rt_route` metric label), from its `route` metric label.
    pub name: String,
    /// The route's metric labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Which requests are on this route.
    pub condition: RequestMatch,
    /// Which responses are failures; the first class that matches decides.
    pub response_classes: Vec<ResponseClass>,
    /// A failed request on this route may be sent again.
    pub is_retryable: bool,
    /// The whole request, retries included, fails after this long.
    pub timeout: Option<Duration>,
}

impl Route {
    /// Whether a response with `status` is a failure on this route. A status no class
    /// matches is classified as without a profile (5xx is a failure), so a profile that
    /// lists only some statuses does not hide server errors.
    pub fn is_failure(&self, status: http::StatusCode) -> bool {
        self.response_classes
            .iter()
            .find(|class| class.condition.matches(status))
            .map_or(status.is_server_error(), |class| class.is_failure)
    }
}

/// Linkerd's retry budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// Retries allowed per original request (0.2: one retry per five requests).
    pub retry_ratio: f32,
    /// Retries always allowed per second, whatever the ratio.
    pub min_retries_per_second: u32,
    /// How long a request counts towards the ratio.
    pub ttl: Duration,
}

impl Default for RetryBudget {
    /// Linkerd's defaults: 20 %, at least 10 retries a second, over 10 seconds.
    fn default() -> RetryBudget {
        RetryBudget {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

/// A response class: responses matching `condition` are failures or successes.
#[derive(Clone, Debug)]
pub struct ResponseClass {
    pub condition: ResponseMatch,
    pub is_failure: bool,
}

/// A condition on a request.
#[derive(Clone, Debug)]
pub struct RequestMatch(pub Matcher<RequestLeaf>);

/// A test on one property of a request.
#[derive(Clone, Debug)]
pub enum RequestLeaf {
    Method(http::Method),
    /// Matches the whole path (the expression is anchored at both ends).
    Path(regex_lite::Regex),
}

impl RequestMatch {
    pub fn matches(&self, method: &http::Method, path: &str) -> bool {
        self.0.eval(|leaf| match leaf {
            RequestLeaf::Method(m) => m == method,
            RequestLeaf::Path(re) => re.is_match(path),
        })
    }
}

/// A condition on a response.
#[derive(Clone, Debug)]
pub struct ResponseMatch(pub Matcher<StatusRange>);

/// Statuses from `min` to `max`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    pub min: u16,
    pub max: u16,
}

impl ResponseMatch {
    pub fn matches(&self, status: http::StatusCode) -> bool {
        let status = status.as_u16();
        self.0
            .eval(|range| (range.min..=range.max).contains(&status))
    }
}

/// A boolean condition over leaves of type `L`, as a postfix program.
#[derive(Clone, Debug)]
pub struct Matcher<L> {
    ops: Vec<Op<L>>,
}

/// One step of a [`Matcher`]'s program.
#[derive(Clone, Debug)]
enum Op<L> {
    /// Push the leaf's result.
    Leaf(L),
    /// Pop this many results; push whether all are true.
    All(usize),
    /// Pop this many results; push whether any is true.
    Any(usize),
    /// Negate the top result.
    Not,
}

/// One node of a condition tree being flattened into a [`Matcher`].
pub enum Node<'a, T, L> {
    All(&'a [T]),
    Any(&'a [T]),
    Not(&'a T),
    Leaf(L),
}

/// Why a condition tree was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatcherError {
    /// More nodes than [`MAX_MATCH_NODES`].
    #[error("condition has more than {MAX_MATCH_NODES} nodes")]
    TooLarge,
    /// A node the reader could not interpret.
    #[error("invalid condition: {0}")]
    Invalid(String),
}

/// Nodes in one condition tree. Linkerd's generated profiles have a handful; the bound
/// keeps a peer's tree from costing unbounded time on every request.
pub const MAX_MATCH_NODES: usize = 256;

impl<L> Matcher<L> {
    /// Flattens the tree under `root`; `view` says what each node is. Works over an
    /// explicit stack: the tree's depth costs heap, never call stack.
    pub fn build<'a, T>(
        root: &'a T,
        view: impl Fn(&'a T) -> Result<Node<'a, T, L>, MatcherError>,
    ) -> Result<Matcher<L>, MatcherError> {
        enum Frame<'a, T, L> {
            Visit(&'a T),
            Emit(Op<L>),
        }
        let mut ops = Vec::new();
        let mut nodes = 0usize;
        let mut stack = vec![Frame::Visit(root)];
        while let Some(frame) = stack.pop() {
            let node = match frame {
                Frame::Emit(op) => {
                    ops.push(op);
                    continue;
                }
                Frame::Visit(node) => node,
            };
            nodes += 1;
            if nodes > MAX_MATCH_NODES {
                return Err(MatcherError::TooLarge);
            }
            // Children are pushed after their operator and in reverse, so each child's
            // whole program is emitted, in order, before the operator.
            match view(node)? {
                Node::Leaf(leaf) => ops.push(Op::Leaf(leaf)),
                Node::Not(child) => {
                    stack.push(Frame::Emit(Op::Not));
                    stack.push(Frame::Visit(child));
                }
                Node::All(children) | Node::Any(children) if children.len() > MAX_MATCH_NODES => {
                    return Err(MatcherError::TooLarge);
                }
                Node::All(children) => {
                    stack.push(Frame::Emit(Op::All(children.len())));
                    stack.extend(children.iter().rev().map(Frame::Visit));
                }
                Node::Any(children) => {
                    stack.push(Frame::Emit(Op::Any(children.len())));
                    stack.extend(children.iter().rev().map(Frame::Visit));
                }
            }
        }
        Ok(Matcher { ops })
    }

    /// A matcher of one leaf.
    pub fn leaf(leaf: L) -> Matcher<L> {
        Matcher {
            ops: vec![Op::Leaf(leaf)],
        }
    }

    /// Runs the program; `test` evaluates a leaf. An empty `all` is true, an empty `any`
    /// false.
    pub fn eval(&self, test: impl Fn(&L) -> bool) -> bool {
        let mut stack: Vec<bool> = Vec::with_capacity(8);
        for op in &self.ops {
            match op {
                Op::Leaf(leaf) => stack.push(test(leaf)),
                Op::All(n) | Op::Any(n) => {
                    let at = stack.len().saturating_sub(*n);
                    let operands = &stack[at..];
                    let value = if matches!(op, Op::All(_)) {
                        operands.iter().all(|b| *b)
                    } else {
                        operands.iter().any(|b| *b)
                    };
                    stack.truncate(at);
                    stack.push(value);
                }
                Op::Not => {
                    if let Some(top) = stack.last_mut() {
                        *top = !*top;
                    }
                }
            }
        }
        stack.pop().unwrap_or(false)
    }
}

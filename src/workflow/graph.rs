//! Building an action list into a [`Graph`]: ids checked and indexed, configs typed by their kind
//! (`actions::ActionConfig::parse`) and bound-checked, edges resolved to indexes, loop bodies
//! built as sub-graphs, and cycles without a `max_visits` bound refused.

use std::collections::{HashMap, HashSet};

use super::check::ids;
use super::load::Checker;
use super::{Graph, Node};
use crate::actions::{ActionConfig, ConfigError};
use crate::spec::{ActionDef, is_identifier};

/// Names templates use for their own values, which action ids must not shadow.
const RESERVED: &[&str] = &[
    "vars", "trigger", "env", "secrets", "actions", "loop", "item", "run", "true", "false", "none",
];

/// Builds the graph of `defs`, found at `base` (e.g. `actions`); `None` when an action's config
/// did not parse (the problems are in `c`).
pub(super) fn build_graph(defs: &[ActionDef], base: &str, c: &mut Checker<'_>) -> Option<Graph> {
    build(defs, base, c, &mut HashMap::new())
}

/// [`build_graph`] with `seen`: every id so far, nested bodies included, and where it was first
/// used (ids are unique across a whole workflow).
fn build(
    defs: &[ActionDef],
    base: &str,
    c: &mut Checker<'_>,
    seen: &mut HashMap<String, String>,
) -> Option<Graph> {
    let index = index_ids(defs, base, c, seen);
    let list = List {
        defs,
        index: &index,
    };
    let mut nodes = Vec::with_capacity(defs.len());
    for (i, a) in defs.iter().enumerate() {
        nodes.extend(build_node(&list, &format!("{base}[{i}]"), a, c, seen));
    }
    if nodes.len() != defs.len() {
        return None;
    }
    let graph = Graph {
        nodes,
        entry: 0,
        index,
    };
    if let Some(cycle) = unbounded_cycle(&graph) {
        let names: Vec<&str> = cycle.iter().map(|&i| graph.nodes[i].id.as_str()).collect();
        let first = cycle[0];
        c.err(
            format!("{base}[{first}]"),
            format!(
                "actions {} form a cycle with no bound: give one of them `max_visits`",
                names.join(" -> ")
            ),
        );
    }
    Some(graph)
}

/// Checks each id (an identifier, not reserved, not used before) and indexes the list by id.
fn index_ids(
    defs: &[ActionDef],
    base: &str,
    c: &mut Checker<'_>,
    seen: &mut HashMap<String, String>,
) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, a) in defs.iter().enumerate() {
        let field = format!("{base}[{i}].id");
        if !is_identifier(&a.id) {
            c.err(&field, format!("`{}` is not a valid action id: use letters, digits and `_`, starting with a letter (templates refer to it as `{{{{ id.field }}}}`)", a.id));
        } else if RESERVED.contains(&a.id.as_str()) {
            c.err(
                &field,
                format!(
                    "`{}` is reserved for templates: choose another action id",
                    a.id
                ),
            );
        }
        if let Some(prev) = seen.insert(a.id.clone(), field.clone()) {
            c.err(
                &field,
                format!("duplicate action id `{}` (first used at `{prev}`)", a.id),
            );
        }
        index.insert(a.id.clone(), i);
    }
    index
}

/// One action list being built: its definitions and their indexes by id.
struct List<'a> {
    defs: &'a [ActionDef],
    index: &'a HashMap<String, usize>,
}

impl List<'_> {
    /// The index of the action `target` names, if any; a name not in the list is a problem at
    /// `field`.
    fn resolve(
        &self,
        c: &mut Checker<'_>,
        field: String,
        target: &Option<String>,
    ) -> Option<usize> {
        let t = target.as_ref()?;
        match self.index.get(t) {
            Some(i) => Some(*i),
            None => {
                c.err(
                    field,
                    format!(
                        "no action `{t}` in this list; actions are: {}",
                        ids(self.defs)
                    ),
                );
                None
            }
        }
    }
}

/// The node of action `a` at `at` (e.g. `actions[2]`); `None` when its config did not parse.
fn build_node(
    list: &List<'_>,
    at: &str,
    a: &ActionDef,
    c: &mut Checker<'_>,
    seen: &mut HashMap<String, String>,
) -> Option<Node> {
    let config = match ActionConfig::parse(&a.kind, &a.config) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            let field = match &e {
                ConfigError::UnknownKind { .. } => format!("{at}.type"),
                ConfigError::Invalid { path, .. } if path.is_empty() => format!("{at}.config"),
                ConfigError::Invalid { path, .. } => format!("{at}.config.{path}"),
            };
            c.err(field, e.to_string());
            None
        }
    };
    let on_success = list.resolve(c, format!("{at}.on_success"), &a.on_success);
    let on_failure = list.resolve(c, format!("{at}.on_failure"), &a.on_failure);
    for p in super::limits::check_action(at, a, config.as_ref()) {
        c.err(p.field, p.message);
    }
    let config = config?;
    let branches = match &config {
        ActionConfig::Condition(cc) => Some((
            list.resolve(c, format!("{at}.config.then"), &cc.then),
            list.resolve(c, format!("{at}.config.else"), &cc.otherwise),
        )),
        _ => None,
    };
    // An empty body is a problem the loop kind's check reported.
    let body = match &config {
        ActionConfig::Loop(l) if !l.body.is_empty() => {
            build(&l.body, &format!("{at}.config.body"), c, seen)
        }
        _ => None,
    };
    Some(Node {
        id: a.id.clone(),
        kind: a.kind.clone(),
        config,
        on_success,
        on_failure,
        branches,
        body,
        retry: a.retry.clone(),
        timeout: a.timeout.map(|d| d.0),
        max_visits: a.max_visits,
    })
}

/// Successors of a node: every edge it may take.
fn successors(g: &Graph, i: usize) -> Vec<usize> {
    let n = &g.nodes[i];
    let next = g.next_in_list(i);
    let mut out = Vec::new();
    match n.branches {
        Some((t, e)) => {
            out.extend(t.or(next));
            out.extend(e.or(next));
        }
        None => out.extend(n.on_success.or(next)),
    }
    out.extend(n.on_failure);
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

/// A cycle none of whose nodes has `max_visits`, if there is one.
fn unbounded_cycle(g: &Graph) -> Option<Vec<usize>> {
    // Depth-first search over the nodes without a visit bound; a back edge closes a cycle.
    let bounded: HashSet<usize> = (0..g.nodes.len())
        .filter(|&i| g.nodes[i].max_visits.is_some())
        .collect();
    let mut mark = vec![Mark::New; g.nodes.len()];
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..g.nodes.len() {
        if mark[i] == Mark::New
            && !bounded.contains(&i)
            && let Some(c) = visit(g, i, &bounded, &mut mark, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

fn visit(
    g: &Graph,
    i: usize,
    bounded: &HashSet<usize>,
    mark: &mut [Mark],
    stack: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    mark[i] = Mark::Active;
    stack.push(i);
    for s in successors(g, i) {
        if bounded.contains(&s) {
            continue;
        }
        match mark[s] {
            Mark::Active => {
                let from = stack.iter().position(|&x| x == s).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(s);
                return Some(cycle);
            }
            Mark::New => {
                if let Some(c) = visit(g, s, bounded, mark, stack) {
                    return Some(c);
                }
            }
            Mark::Done => {}
        }
    }
    stack.pop();
    mark[i] = Mark::Done;
    None
}

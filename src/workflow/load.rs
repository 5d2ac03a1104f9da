//! Reading workflow files: YAML to [`WorkflowDef`] to a checked [`Workflow`].
//!
//! Every problem becomes a [`LoadError`] with the file, the line and column, the field's path and
//! what was expected. Structural errors (a wrong type, an unknown field) stop that file at the
//! first one, as serde does; all semantic checks (edges, cycles, ids, cron strings, templates,
//! action configs) run to the end so one pass lists every problem. A bad file never stops the
//! others: [`load_dirs`] returns the good workflows and the errors side by side.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::def::{ActionDef, Mode, TriggerDef, WorkflowDef};
use super::positions::{Pos, Positions};
use super::{Graph, Node, Schedule, Workflow};
use crate::actions::ActionConfig;

/// One problem in one workflow file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// Where in it, when known.
    pub line: Option<usize>,
    /// Column, when known.
    pub column: Option<usize>,
    /// The field's path, e.g. `actions[1].config.url`; empty for the whole file.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

/// What loading a set of directories produced.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Workflows that loaded, by id order.
    pub workflows: Vec<Arc<Workflow>>,
    /// Every problem found.
    pub errors: Vec<LoadError>,
    /// What loaded but will not work as written (see [`Workflow::warnings`]).
    pub warnings: Vec<LoadError>,
    /// Files read.
    pub files: usize,
}

const RESERVED: &[&str] = &[
    "vars", "trigger", "env", "secrets", "actions", "loop", "item", "run", "true", "false", "none",
];

struct Checker<'a> {
    file: &'a Path,
    positions: &'a Positions,
    errors: Vec<LoadError>,
}

impl Checker<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let problem = self.at(field.into(), message.into());
        self.errors.push(problem);
    }

    /// A problem at `field`'s position in the file.
    fn at(&self, field: String, message: String) -> LoadError {
        let pos = if message.starts_with("unknown field") {
            self.positions.find_key(&field)
        } else {
            self.positions.find(&field)
        };
        LoadError {
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            field,
            message,
        }
    }
}

/// Why a trigger kind that parses does not start runs yet, or `None` when it does.
fn inactive(t: &TriggerDef) -> Option<&'static str> {
    match t {
        TriggerDef::Webhook { .. } => Some(
            "webhook triggers are not active yet: no HTTP server listens for them until the \
             control plane lands; start this workflow another way (a manual, voice or schedule \
             trigger)",
        ),
        TriggerDef::Event { .. } => Some(
            "event triggers are not active yet: nothing fires them until the control plane \
             lands; start this workflow another way (a manual, voice or schedule trigger)",
        ),
        _ => None,
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads one workflow file.
pub fn load_file(path: &Path) -> Result<Workflow, Vec<LoadError>> {
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&src, path),
        Err(e) => Err(vec![LoadError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read the file: {e}"),
        }]),
    }
}

/// Parses and checks one workflow from YAML text; `file` names it in errors.
pub fn load_str(src: &str, file: &Path) -> Result<Workflow, Vec<LoadError>> {
    let positions = Positions::index(src);
    let mut c = Checker {
        file,
        positions: &positions,
        errors: Vec::new(),
    };
    if src.trim().is_empty()
        || src
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        c.err(
            "",
            "the file is empty: expected a workflow with `id`, `triggers` and `actions`",
        );
        return Err(c.errors);
    }
    let de = serde_yaml_ng::Deserializer::from_str(src);
    let def: WorkflowDef = match serde_path_to_error::deserialize(de) {
        Ok(def) => def,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner();
            let pos = inner.location().map(|l| Pos {
                line: l.line(),
                column: l.column(),
            });
            let mut message = inner.to_string();
            // serde_yaml_ng puts the path first and the position last; both are shown already.
            if let Some((head, rest)) = message.split_once(": ")
                && !head.is_empty()
                && path.starts_with(head)
            {
                message = rest.to_owned();
            }
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
            let pos = pos.or_else(|| positions.find(&path));
            return Err(vec![LoadError {
                file: file.to_path_buf(),
                line: pos.map(|p| p.line),
                column: pos.map(|p| p.column),
                field: path,
                message,
            }]);
        }
    };
    let workflow = check(def, &mut c, file);
    if c.errors.is_empty() {
        workflow.ok_or_else(Vec::new)
    } else {
        Err(c.errors)
    }
}

fn check(def: WorkflowDef, c: &mut Checker<'_>, file: &Path) -> Option<Workflow> {
    if def.id.is_empty()
        || !def
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        c.err(
            "id",
            format!(
                "`{}` is not a valid workflow id: use letters, digits, `_` and `-`",
                def.id
            ),
        );
    }
    if def.triggers.is_empty() {
        c.err(
            "triggers",
            "no trigger: add at least one, e.g. `triggers: [{type: manual}]`",
        );
    }
    let mut schedules = Vec::new();
    let mut warnings = Vec::new();
    for (i, t) in def.triggers.iter().enumerate() {
        let field = format!("triggers[{i}]");
        if let Some(why) = inactive(t) {
            warnings.push(c.at(format!("{field}.type"), why.to_owned()));
        }
        match t {
            TriggerDef::Schedule {
                cron,
                timezone,
                missed,
            } => {
                let parsed = parse_cron(cron).map_err(|m| c.err(format!("{field}.cron"), m));
                let tz = match timezone {
                    Some(name) => match chrono_tz::Tz::from_str(name) {
                        Ok(tz) => Some(tz),
                        Err(_) => {
                            c.err(format!("{field}.timezone"), format!("unknown time zone `{name}`: expected an IANA name such as `Europe/Paris` or `America/New_York`"));
                            None
                        }
                    },
                    None => None,
                };
                if let Ok(parsed) = parsed {
                    schedules.push(Schedule {
                        trigger: i as u32,
                        expr: cron.clone(),
                        cron: parsed,
                        timezone: tz,
                        missed: *missed,
                    });
                }
            }
            TriggerDef::Webhook { path, secret } => {
                if !path.starts_with('/') || path.contains(char::is_whitespace) {
                    c.err(
                        format!("{field}.path"),
                        format!("`{path}` is not a URL path: expected e.g. `/hooks/deploy`"),
                    );
                }
                if let Some(s) = secret
                    && let Err(m) = crate::template::check(s)
                {
                    c.err(format!("{field}.secret"), m);
                }
            }
            TriggerDef::Event { event, .. } => {
                if event.trim().is_empty() {
                    c.err(
                        format!("{field}.event"),
                        "empty event type: expected e.g. `run.failed`",
                    );
                }
            }
            TriggerDef::Voice { phrases } => {
                if phrases.is_empty() {
                    c.err(
                        format!("{field}.phrases"),
                        "a voice trigger needs at least one phrase",
                    );
                }
                for (j, p) in phrases.iter().enumerate() {
                    if p.trim().is_empty() {
                        c.err(format!("{field}.phrases[{j}]"), "empty phrase");
                    } else if let Err(e) = crate::intent::parse_template(p) {
                        c.err(
                            format!("{field}.phrases[{j}]"),
                            format!("phrase `{p}`, column {}: {}", e.column, e.message),
                        );
                    }
                }
            }
            TriggerDef::Manual {} => {}
        }
    }
    for (field, message) in super::limits::check_workflow(&def) {
        c.err(field, message);
    }
    if def.concurrency.max == 0 && matches!(def.concurrency.mode, Mode::Parallel | Mode::Queued) {
        c.err("concurrency.max", "must be at least 1");
    }
    if def.actions.is_empty() {
        c.err(
            "actions",
            "the workflow has no actions: an entry action is required",
        );
        return None;
    }
    let mut seen = HashMap::new();
    let graph = build_graph(&def.actions, "actions", c, &mut seen);
    let mut graph = graph?;
    if let Some(entry) = &def.entry {
        match graph.find(entry) {
            Some(idx) => graph.entry = idx,
            None => c.err(
                "entry",
                format!(
                    "entry action `{entry}` does not exist; actions are: {}",
                    ids(&def.actions)
                ),
            ),
        }
    }
    Some(Workflow {
        def,
        source: file.to_path_buf(),
        graph,
        schedules,
        warnings,
    })
}

fn ids(actions: &[ActionDef]) -> String {
    actions
        .iter()
        .map(|a| a.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a cron string, accepting the usual 5 fields as well as 6 or 7 with seconds (and year).
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_owned(),
        _ => {
            return Err(format!(
                "`{expr}` has {fields} fields: expected 5 (`min hour day month weekday`) or 6-7 with seconds first"
            ));
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| {
        // The cron crate echoes the expression and a caret on lines of their own: keep its reason.
        let text = e.to_string();
        let reason = text.lines().last().unwrap_or("").trim().to_owned();
        format!("`{expr}` is not a valid cron expression: {reason}")
    })
}

fn build_graph(
    defs: &[ActionDef],
    base: &str,
    c: &mut Checker<'_>,
    seen: &mut HashMap<String, String>,
) -> Option<Graph> {
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
    let resolve = |c: &mut Checker<'_>, field: String, target: &Option<String>| -> Option<usize> {
        let t = target.as_ref()?;
        match index.get(t) {
            Some(i) => Some(*i),
            None => {
                c.err(
                    field,
                    format!("no action `{t}` in this list; actions are: {}", ids(defs)),
                );
                None
            }
        }
    };
    let mut nodes = Vec::with_capacity(defs.len());
    for (i, a) in defs.iter().enumerate() {
        let at = format!("{base}[{i}]");
        let config = match ActionConfig::parse(&a.kind, &a.config) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                let field = if e.message.starts_with("unknown action type") {
                    format!("{at}.type")
                } else if e.path.is_empty() {
                    format!("{at}.config")
                } else {
                    format!("{at}.config.{}", e.path)
                };
                c.err(field, e.message);
                None
            }
        };
        let on_success = resolve(c, format!("{at}.on_success"), &a.on_success);
        let on_failure = resolve(c, format!("{at}.on_failure"), &a.on_failure);
        for (field, message) in super::limits::check_action(&at, a, config.as_ref()) {
            c.err(field, message);
        }
        let Some(config) = config else { continue };
        let branches = match &config {
            ActionConfig::Condition(cc) => Some((
                resolve(c, format!("{at}.config.then"), &cc.then),
                resolve(c, format!("{at}.config.else"), &cc.otherwise),
            )),
            _ => None,
        };
        let body = match &config {
            ActionConfig::Loop(l) => {
                if l.body.is_empty() {
                    c.err(
                        format!("{at}.config.body"),
                        "a loop needs at least one action in its body",
                    );
                    None
                } else {
                    if !is_identifier(&l.as_name) {
                        c.err(
                            format!("{at}.config.as"),
                            "must be an identifier such as `item`",
                        );
                    }
                    build_graph(&l.body, &format!("{at}.config.body"), c, seen)
                }
            }
            _ => None,
        };
        nodes.push(Node {
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
        });
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

/// A cycle none of whose nodes has `max_visits`, if there is one.
fn unbounded_cycle(g: &Graph) -> Option<Vec<usize>> {
    // Depth-first search over the nodes without a visit bound; a back edge closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let bounded: HashSet<usize> = (0..g.nodes.len())
        .filter(|&i| g.nodes[i].max_visits.is_some())
        .collect();
    let mut mark = vec![Mark::New; g.nodes.len()];
    let mut stack: Vec<usize> = Vec::new();
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

/// Where workflows are loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every `*.yaml`/`*.yml` file of a folder.
    Dir(PathBuf),
    /// The bundled workflows built into the program (`workflows/` of its source tree).
    Embedded,
}

fn workflow_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every `*.yaml`/`*.yml` file of `dirs`, in order. A later directory's workflow replaces an
/// earlier one with the same id (the user's folder overrides the bundled one); two files with the
/// same id in one directory are an error. Missing directories are skipped.
pub fn load_dirs(dirs: &[PathBuf]) -> LoadReport {
    let sources: Vec<Source> = dirs.iter().cloned().map(Source::Dir).collect();
    load_sources(&sources)
}

/// [`load_dirs`] over folders and the copy of the bundled workflows built into the program.
pub fn load_sources(sources: &[Source]) -> LoadReport {
    let mut report = LoadReport::default();
    let mut by_id: BTreeMap<String, (usize, Arc<Workflow>)> = BTreeMap::new();
    for (d, source) in sources.iter().enumerate() {
        let files: Vec<(PathBuf, Option<&'static str>)> = match source {
            Source::Embedded => super::bundled::files(),
            Source::Dir(dir) => match workflow_files(dir) {
                Ok(f) => f.into_iter().map(|f| (f, None)).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    report.errors.push(LoadError {
                        file: dir.clone(),
                        line: None,
                        column: None,
                        field: String::new(),
                        message: format!("cannot read the workflows folder: {e}"),
                    });
                    continue;
                }
            },
        };
        for (file, text) in files {
            report.files += 1;
            let loaded = match text {
                Some(text) => load_str(text, &file),
                None => load_file(&file),
            };
            match loaded {
                Ok(wf) => {
                    let id = wf.id().to_owned();
                    if let Some((prev_dir, prev)) = by_id.get(&id)
                        && *prev_dir == d
                    {
                        report.errors.push(LoadError {
                            file: file.clone(),
                            line: Some(1),
                            column: None,
                            field: "id".into(),
                            message: format!(
                                "duplicate workflow id `{id}`: {} uses it too",
                                prev.source.display()
                            ),
                        });
                        continue;
                    }
                    by_id.insert(id, (d, Arc::new(wf)));
                }
                Err(errs) => report.errors.extend(errs),
            }
        }
    }
    // Cross-workflow references: a `workflow` action must name a workflow that loaded.
    for (_, wf) in by_id.values() {
        check_calls(&wf.graph, &by_id, wf, "actions", &mut report.errors);
    }
    report.workflows = by_id.into_values().map(|(_, w)| w).collect();
    report.warnings = report
        .workflows
        .iter()
        .flat_map(|w| w.warnings.iter().cloned())
        .collect();
    report
}

fn check_calls(
    g: &Graph,
    known: &BTreeMap<String, (usize, Arc<Workflow>)>,
    wf: &Workflow,
    base: &str,
    errors: &mut Vec<LoadError>,
) {
    for (i, n) in g.nodes.iter().enumerate() {
        if let ActionConfig::Workflow(call) = &n.config
            && !known.contains_key(&call.workflow)
        {
            let field = format!("{base}[{i}].config.workflow");
            // Rare path: read the file again for the position rather than keep every index.
            let pos = super::bundled::text_of(&wf.source)
                .map(str::to_owned)
                .or_else(|| std::fs::read_to_string(&wf.source).ok())
                .and_then(|src| Positions::index(&src).find(&field));
            errors.push(LoadError {
                file: wf.source.clone(),
                line: pos.map(|p| p.line),
                column: pos.map(|p| p.column),
                field,
                message: format!("no workflow `{}` is loaded", call.workflow),
            });
        }
        if let Some(body) = &n.body {
            check_calls(body, known, wf, &format!("{base}[{i}].config.body"), errors);
        }
    }
}

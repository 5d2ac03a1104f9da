//! Reading workflow files: YAML to [`WorkflowDef`] to a checked [`Workflow`].
//!
//! Every problem becomes a [`LoadError`] with the file, the line and column, the field's path and
//! what was expected. Structural errors (a wrong type, an unknown field) stop that file at the
//! first one, as serde does; all semantic checks (`check`: ids, triggers, bounds; `graph`: edges,
//! cycles, action configs) run to the end so one pass lists every problem. A bad file never stops
//! the others: `dirs::load_dirs` returns the good workflows and the errors side by side.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Workflow;
use super::def::WorkflowDef;
use super::positions::{Pos, Positions};

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

impl LoadError {
    /// A problem with `file` as a whole (it cannot be read, say): no position, no field.
    pub(super) fn whole(file: &Path, message: String) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            field: String::new(),
            message,
        }
    }
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

/// Collects the problems of one file, each placed at its field's position.
pub(super) struct Checker<'a> {
    pub(super) file: &'a Path,
    pub(super) positions: &'a Positions,
    pub(super) errors: Vec<LoadError>,
}

impl Checker<'_> {
    /// Records a problem at `field`.
    pub(super) fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let problem = self.at(field.into(), message.into());
        self.errors.push(problem);
    }

    /// A problem at `field`'s position in the file.
    pub(super) fn at(&self, field: String, message: String) -> LoadError {
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

/// Reads one workflow file.
pub fn load_file(path: &Path) -> Result<Workflow, Vec<LoadError>> {
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&src, path),
        Err(e) => Err(vec![LoadError::whole(
            path,
            format!("cannot read the file: {e}"),
        )]),
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
    if is_blank(src) {
        c.err(
            "",
            "the file is empty: expected a workflow with `id`, `triggers` and `actions`",
        );
        return Err(c.errors);
    }
    let de = serde_yaml_ng::Deserializer::from_str(src);
    let def: WorkflowDef = match serde_path_to_error::deserialize(de) {
        Ok(def) => def,
        Err(e) => return Err(vec![structural(e, &positions, file)]),
    };
    let workflow = super::check::check(def, &mut c, file);
    if c.errors.is_empty() {
        workflow.ok_or_else(Vec::new)
    } else {
        Err(c.errors)
    }
}

/// Whether `src` has nothing but blank lines and comments.
fn is_blank(src: &str) -> bool {
    src.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// The error serde stopped at (a wrong type, an unknown field, bad YAML), at its position.
fn structural(
    e: serde_path_to_error::Error<serde_yaml_ng::Error>,
    positions: &Positions,
    file: &Path,
) -> LoadError {
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
    LoadError {
        file: file.to_path_buf(),
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        field: path,
        message,
    }
}

//! Loading sets of workflows: every file of the workflows folders (and the bundled copy), a later
//! folder overriding an earlier one by id, and the references between workflows (`workflow`
//! actions) checked once all have loaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::load::{LoadError, LoadReport, load_file, load_str};
use super::positions::Positions;
use super::{Graph, Workflow};
use crate::actions::ActionConfig;
use crate::config::WorkflowSource;

/// Loaded workflows by id, with the index of the source each came from.
type ById = BTreeMap<String, (usize, Arc<Workflow>)>;

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
    let sources: Vec<WorkflowSource> = dirs.iter().cloned().map(WorkflowSource::Dir).collect();
    load_sources(&sources)
}

/// [`load_dirs`] over folders and the copy of the bundled workflows built into the program.
pub fn load_sources(sources: &[WorkflowSource]) -> LoadReport {
    let mut report = LoadReport::default();
    let mut by_id = ById::new();
    for (d, source) in sources.iter().enumerate() {
        let files: Vec<(PathBuf, Option<&'static str>)> = match source {
            WorkflowSource::Embedded => super::bundled::files(),
            WorkflowSource::Dir(dir) => match workflow_files(dir) {
                Ok(f) => f.into_iter().map(|f| (f, None)).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    report.errors.push(LoadError::whole(
                        dir,
                        format!("cannot read the workflows folder: {e}"),
                    ));
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
                Ok(wf) => add(&mut by_id, d, wf, &mut report.errors),
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

/// Adds `wf`, loaded from source `d`: it replaces a workflow of an earlier source with its id,
/// and is an error beside one of the same source.
fn add(by_id: &mut ById, d: usize, wf: Workflow, errors: &mut Vec<LoadError>) {
    let id = wf.id().to_owned();
    if let Some((prev_dir, prev)) = by_id.get(&id)
        && *prev_dir == d
    {
        errors.push(LoadError {
            file: wf.source.clone(),
            line: Some(1),
            column: None,
            field: "id".into(),
            message: format!(
                "duplicate workflow id `{id}`: {} uses it too",
                prev.source.display()
            ),
        });
        return;
    }
    by_id.insert(id, (d, Arc::new(wf)));
}

fn check_calls(g: &Graph, known: &ById, wf: &Workflow, base: &str, errors: &mut Vec<LoadError>) {
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

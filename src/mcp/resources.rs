//! The resources: each workflow's definition (`atlas://workflows/{id}`, its YAML file as
//! written, or the parsed definition as JSON when the file cannot be read) and the recent runs
//! (`atlas://runs/recent`, JSON, the 20 newest).

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};
use serde_json::json;

use super::AtlasMcp;

const RECENT: &str = "atlas://runs/recent";
const WORKFLOW: &str = "atlas://workflows/";

pub(super) fn list(server: &AtlasMcp) -> Vec<Resource> {
    let mut out: Vec<Resource> = server
        .engine
        .workflows()
        .values()
        .map(|w| {
            let mut r = Resource::new(format!("{WORKFLOW}{}", w.id()), w.id().to_owned())
                .with_title(w.name().to_owned())
                .with_description(format!("The definition of workflow `{}` (YAML).", w.id()));
            r.mime_type = Some("application/yaml".into());
            r
        })
        .collect();
    let mut recent = Resource::new(RECENT, "recent runs")
        .with_description("The 20 most recent runs, newest first (JSON).");
    recent.mime_type = Some("application/json".into());
    out.push(recent);
    out
}

fn contents(uri: &str, mime: &str, text: String) -> ReadResourceResult {
    ReadResourceResult::new(vec![ResourceContents::TextResourceContents {
        uri: uri.to_owned(),
        mime_type: Some(mime.to_owned()),
        text,
        meta: None,
    }])
}

pub(super) fn read(server: &AtlasMcp, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if uri == RECENT {
        let runs = server
            .engine
            .store()
            .list_runs(None, 20)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let text = serde_json::to_string_pretty(&json!({ "runs": runs })).unwrap_or_default();
        return Ok(contents(uri, "application/json", text));
    }
    let not_found = || {
        ErrorData::resource_not_found(
            format!("no resource `{uri}`; resources/list lists them"),
            None,
        )
    };
    let id = uri.strip_prefix(WORKFLOW).ok_or_else(not_found)?;
    let w = server.engine.workflow(id).ok_or_else(not_found)?;
    Ok(match std::fs::read_to_string(&w.source) {
        Ok(yaml) => contents(uri, "application/yaml", yaml),
        Err(_) => contents(
            uri,
            "application/json",
            serde_json::to_string_pretty(&w.def).unwrap_or_default(),
        ),
    })
}

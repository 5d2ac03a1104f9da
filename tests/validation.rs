//! Validation: every problem named with file, line, column, field and what was expected; a bad
//! file never stops the good ones.

use std::path::Path;

use atlas::workflow::{LoadError, load_dirs, load_str};

fn errors(src: &str) -> Vec<LoadError> {
    load_str(src, Path::new("wf.yaml")).expect_err("should not load")
}

fn one(src: &str) -> String {
    let e = errors(src);
    assert_eq!(e.len(), 1, "{e:#?}");
    e[0].to_string()
}

#[test]
fn unknown_fields_name_the_field_and_the_expected_ones() {
    let msg = one(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - id: x\n    type: log\n    config: {message: hi}\n    retries: 3\n",
    );
    assert_eq!(
        msg,
        "wf.yaml:7:5: `actions[0].retries`: unknown field `retries`, expected one of `id`, `type`, `name`, `config`, `on_success`, `on_failure`, `retry`, `timeout`, `max_visits`"
    );
}

#[test]
fn unknown_action_kinds_and_config_fields_are_caught() {
    let e = errors(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - id: x\n    type: teleport\n  - id: y\n    type: http\n    config:\n      url: http://x\n      methd: GET\n",
    );
    let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert!(text[0].starts_with("wf.yaml:5:11: `actions[0].type`: unknown action type `teleport`, expected one of: http,"), "{text:?}");
    assert!(text[1].starts_with("wf.yaml:10:7: `actions[1].config.methd`: unknown field `methd`, expected one of `url`, `method`"), "{text:?}");
}

#[test]
fn wrong_types_give_line_and_expectation() {
    let msg = one(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - id: x\n    type: delay\n    config: {duration: forever}\n",
    );
    assert_eq!(
        msg,
        "wf.yaml:6:24: `actions[0].config.duration`: `forever` is not a duration: expected e.g. 500ms, 5s, 2m, 1h"
    );
    let msg = one("id: a\ntriggers: [{type: manual}]\nactions: {id: x}\n");
    assert!(
        msg.starts_with("wf.yaml:3:10: `actions`: invalid type: map, expected a sequence"),
        "{msg}"
    );
}

#[test]
fn dangling_edges_duplicates_and_cycles_are_all_listed() {
    let e = errors(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - {id: one, type: log, config: {message: x}, on_success: two}\n  - {id: two, type: log, config: {message: x}, on_success: one, on_failure: ghost}\n  - {id: two, type: log, config: {message: x}}\n  - {id: c, type: condition, config: {if: 'true', then: nowhere}}\n",
    );
    let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    let all = text.join("\n");
    assert!(all.contains("wf.yaml:6:10: `actions[2].id`: duplicate action id `two` (first used at `actions[1].id`)"), "{all}");
    assert!(
        all.contains("`actions[1].on_failure`: no action `ghost` in this list"),
        "{all}"
    );
    assert!(
        all.contains("`actions[3].config.then`: no action `nowhere` in this list"),
        "{all}"
    );
    let msg = one(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n  - {id: b, type: log, config: {message: x}, on_success: a}\n",
    );
    assert_eq!(
        msg,
        "wf.yaml:4:5: `actions[0]`: actions a -> b -> a form a cycle with no bound: give one of them `max_visits`"
    );
}

#[test]
fn triggers_are_checked() {
    let msg = one("id: a\ntriggers: []\nactions:\n  - {id: x, type: log, config: {message: x}}\n");
    assert_eq!(
        msg,
        "wf.yaml:2:11: `triggers`: no trigger: add at least one, e.g. `triggers: [{type: manual}]`"
    );
    let e = errors(
        "id: a\ntriggers:\n  - {type: schedule, cron: '61 * * * *', timezone: Mars/Base}\n  - {type: webhook, path: no-slash, scheme: none}\n  - {type: voice, phrases: []}\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
    );
    let all: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert!(
        all[0].starts_with(
            "wf.yaml:3:28: `triggers[0].cron`: `61 * * * *` is not a valid cron expression"
        ),
        "{all:?}"
    );
    assert!(
        all[1].contains("`triggers[0].timezone`: unknown time zone `Mars/Base`"),
        "{all:?}"
    );
    assert!(
        all[2].contains("`triggers[1].path`: `no-slash` is not a URL path"),
        "{all:?}"
    );
    assert!(
        all[3].contains("`triggers[2].phrases`: a voice trigger needs at least one phrase"),
        "{all:?}"
    );
    let msg = one(
        "id: a\ntriggers: [{type: telepathy}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
    );
    assert_eq!(
        msg,
        "wf.yaml:2:19: `triggers[0].type`: unknown variant `telepathy`, expected one of `manual`, `schedule`, `webhook`, `event`, `voice`"
    );
}

#[test]
fn cron_accepts_five_fields_and_seconds() {
    for cron in [
        "0 7 * * Mon-Fri",
        "*/10 * * * * *",
        "0 0 7 * * Mon-Fri 2030",
    ] {
        let src = format!(
            "id: a\ntriggers: [{{type: schedule, cron: '{cron}', timezone: Europe/Paris}}]\nactions:\n  - {{id: x, type: log, config: {{message: x}}}}\n"
        );
        let wf = load_str(&src, Path::new("wf.yaml")).unwrap_or_else(|e| panic!("{cron}: {e:?}"));
        assert_eq!(wf.schedules.len(), 1);
    }
}

#[test]
fn bad_templates_are_caught_at_load() {
    let msg = one(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - id: x\n    type: log\n    config:\n      message: 'hi {{ vars.name + }}'\n",
    );
    assert!(msg.starts_with("wf.yaml:7:16: `actions[0].config.message`: invalid template `hi {{ vars.name + }}`: syntax error"), "{msg}");
    let msg = one(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - {id: c, type: condition, config: {if: 'x ==', then: c}}\n",
    );
    assert!(
        msg.contains("`actions[0].config.if`: invalid expression `x ==`"),
        "{msg}"
    );
}

#[test]
fn ids_are_checked() {
    let e = errors(
        "id: 'bad id'\ntriggers: [{type: manual}]\nactions:\n  - {id: vars, type: log, config: {message: x}}\n  - {id: with-dash, type: log, config: {message: x}}\n",
    );
    let all: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert!(
        all[0].contains("`id`: `bad id` is not a valid workflow id"),
        "{all:?}"
    );
    assert!(
        all[1].contains("`actions[0].id`: `vars` is reserved"),
        "{all:?}"
    );
    assert!(
        all[2].contains("`actions[1].id`: `with-dash` is not a valid action id"),
        "{all:?}"
    );
}

#[test]
fn syntax_errors_and_empty_files_are_clear() {
    let msg = one("id: a\ntriggers: [{type: manual}\nactions: []\n");
    assert!(msg.starts_with("wf.yaml:3:"), "{msg}");
    let msg = one("# nothing here\n");
    assert!(msg.contains("the file is empty"), "{msg}");
}

#[test]
fn a_bad_file_never_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), "id: good\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n").unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: bad\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: nope}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("calls.yml"), "id: calls\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: workflow, config: {workflow: missing}}\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a workflow").unwrap();
    let report = load_dirs(&[dir.path().to_path_buf()]);
    let ids: Vec<&str> = report.workflows.iter().map(|w| w.id()).collect();
    assert!(ids.contains(&"good"), "{ids:?}");
    assert_eq!(report.files, 3);
    let all: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        all.iter()
            .any(|e| e.contains("bad.yaml:4:19: `actions[0].type`: unknown action type `nope`")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("calls.yml") && e.contains("no workflow `missing` is loaded")),
        "{all:?}"
    );
}

#[test]
fn the_users_folder_overrides_a_bundled_workflow_with_the_same_id() {
    let bundled = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    std::fs::write(bundled.path().join("w.yaml"), "id: w\nname: Bundled\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n").unwrap();
    std::fs::write(user.path().join("w.yaml"), "id: w\nname: Mine\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n").unwrap();
    let report = load_dirs(&[bundled.path().to_path_buf(), user.path().to_path_buf()]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.workflows.len(), 1);
    assert_eq!(report.workflows[0].name(), "Mine");
}

#[test]
fn a_misspelt_notification_urgency_is_a_load_error() {
    let msg = one(
        "id: a\ntriggers: [{type: manual}]\nactions:\n  - id: n\n    type: notify\n    config: {title: hi, urgency: hgh}\n",
    );
    assert!(msg.starts_with("wf.yaml:6:"), "names the line: {msg}");
    assert!(
        msg.contains("`actions[0].config.urgency`")
            && msg.contains("unknown variant `hgh`, expected one of `low`, `normal`, `critical`"),
        "{msg}"
    );
}

#[test]
fn an_unknown_event_type_loads_with_a_warning_naming_file_and_line_and_webhooks_without_one() {
    let wf = load_str(
        "id: hooked\ntriggers:\n  - type: manual\n  - type: webhook\n    path: /deploy\n    scheme: github\n    secret: '{{ secrets.deploy_key }}'\n  - type: event\n    event: run.faild\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
        Path::new("hooked.yaml"),
    )
    .expect("loads");
    let warnings: Vec<String> = wf.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(
            "hooked.yaml:9:12: `triggers[2].event`: no event source of Atlas publishes `run.faild`"
        ),
        "{warnings:#?}"
    );
    // Other triggers warn about nothing, and a folder's report gathers the warnings.
    let plain = load_str(
        "id: plain\ntriggers: [{type: manual}, {type: schedule, cron: '0 7 * * *'}, {type: webhook, path: /x, scheme: none}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
        Path::new("plain.yaml"),
    )
    .expect("loads");
    assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ev.yaml"),
        "id: ev\ntriggers: [{type: event, event: run.faild}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
    )
    .unwrap();
    let report = load_dirs(&[dir.path().to_path_buf()]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.workflows.len(), 1);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].to_string().contains("ev.yaml:2:"));
}

#[test]
fn a_broken_event_filter_is_a_load_error_naming_file_and_field() {
    let errs = load_str(
        "id: ev\ntriggers:\n  - type: event\n    event: run.failed\n    filter: data.workflow_id ==\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
        Path::new("ev.yaml"),
    )
    .unwrap_err();
    let msg = errs[0].to_string();
    assert!(
        msg.starts_with("ev.yaml:5:")
            && msg.contains("triggers[0].filter")
            && msg.contains("invalid expression"),
        "{msg}"
    );
    // A good one loads, and a known event type warns about nothing.
    let wf = load_str(
        "id: ev\ntriggers:\n  - {type: event, event: run.failed, filter: \"data.workflow_id == 'a'\"}\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
        Path::new("ev.yaml"),
    )
    .expect("loads");
    assert!(wf.warnings.is_empty(), "{:?}", wf.warnings);
}

#[test]
fn a_webhook_names_its_scheme_and_references_its_secret() {
    let errs = |trigger: &str| -> Vec<String> {
        let src = format!(
            "id: h\ntriggers:\n  - {trigger}\nactions:\n  - {{id: x, type: log, config: {{message: x}}}}\n"
        );
        match load_str(&src, Path::new("h.yaml")) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    };
    let e = errs("{type: webhook, path: /x}");
    assert!(
        e[0].contains("`triggers[0].scheme`: a webhook needs `scheme`"),
        "{e:?}"
    );
    let e = errs("{type: webhook, path: /x, scheme: github}");
    assert!(
        e[0].contains("`triggers[0].secret`: `scheme: github` needs a `secret`"),
        "{e:?}"
    );
    let e = errs("{type: webhook, path: /x, scheme: slack, secret: hunter2}");
    assert!(
        e[0].contains("must be a reference such as `{{ secrets.hook_key }}`"),
        "{e:?}"
    );
    assert!(!e[0].contains("hunter2"), "{e:?}");
    let e = errs("{type: webhook, path: /x, scheme: none, secret: '{{ secrets.k }}'}");
    assert!(e[0].contains("a secret would not be used"), "{e:?}");
    assert!(
        errs("{type: webhook, path: /x, scheme: standard, secret: '{{ secrets.k }}'}").is_empty()
    );
}

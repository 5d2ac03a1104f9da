//! Property tests of the workflow loader (this stable toolchain cannot run cargo-fuzz): no input,
//! arbitrary bytes or structured YAML, makes it panic; every rejection names the file.

use std::path::Path;

use atlas::workflow::load_str;
use proptest::prelude::*;

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("manual".to_owned()),
        Just("http".to_owned()),
        Just("{{ vars.x }}".to_owned()),
        Just("{% if %}".to_owned()),
        Just("5s".to_owned()),
        Just("-1".to_owned()),
        Just("*/5 * * * *".to_owned()),
        "[a-z_]{0,8}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn action() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,3}",
        prop::sample::select(vec![
            "http",
            "log",
            "set",
            "delay",
            "loop",
            "condition",
            "file",
            "speak",
            "workflow",
            "llm",
            "notify",
            "bogus",
        ]),
        prop::collection::vec(("[a-z_]{1,9}", yaml_scalar()), 0..4),
        prop::option::of("[a-z]{1,3}"),
        prop::option::of("[a-z]{1,3}"),
    )
        .prop_map(|(id, kind, config, ok, fail)| {
            let cfg: Vec<String> = config.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
            let mut s = format!(
                "  - id: {id}\n    type: {kind}\n    config: {{{}}}\n",
                cfg.join(", ")
            );
            if let Some(t) = ok {
                s.push_str(&format!("    on_success: {t}\n"));
            }
            if let Some(t) = fail {
                s.push_str(&format!("    on_failure: {t}\n"));
            }
            s
        })
}

fn workflow() -> impl Strategy<Value = String> {
    (
        "[a-z_-]{0,6}",
        prop::collection::vec(
            prop::sample::select(vec![
                "{type: manual}",
                "{type: schedule, cron: '0 7 * * *'}",
                "{type: schedule, cron: 'x'}",
                "{type: voice, phrases: ['hi']}",
                "{type: webhook, path: /x}",
                "{type: event, event: run.failed}",
                "{type: nope}",
            ]),
            0..3,
        ),
        prop::collection::vec(action(), 0..5),
        prop::option::of("[a-z]{1,3}"),
    )
        .prop_map(|(id, triggers, actions, entry)| {
            let mut s = format!(
                "id: {id:?}\ntriggers: [{}]\nactions:\n{}",
                triggers.join(", "),
                actions.concat()
            );
            if let Some(e) = entry {
                s.push_str(&format!("entry: {e}\n"));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(errors) = load_str(&text, Path::new("fuzz.yaml")) {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors.iter().all(|e| e.file == Path::new("fuzz.yaml")));
        }
    }

    #[test]
    fn structured_yaml_never_panics(src in workflow()) {
        match load_str(&src, Path::new("fuzz.yaml")) {
            Ok(wf) => prop_assert!(!wf.graph.nodes.is_empty()),
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }
}

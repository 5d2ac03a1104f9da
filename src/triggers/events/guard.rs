//! The loop guard of `event` triggers: an event carries the chain of workflows whose runs caused
//! it (oldest first), and a start that would make the chain too long, or that would start a
//! workflow already in it, is refused with a reason.

use serde::Serialize;

/// The longest causation chain an event may carry and still start a run: with 8, a workflow
/// can be the ninth link of a chain but not the tenth.
pub const MAX_CHAIN: usize = 8;

/// Why an event did not start a workflow.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Refusal {
    /// The workflow the trigger belongs to.
    pub workflow_id: String,
    /// The event type.
    pub event: String,
    /// The event's causation chain (workflow ids, oldest first).
    pub chain: Vec<String>,
    /// Why, in words.
    pub reason: String,
}

/// Whether an event with causation `chain` may start `workflow_id`; the refusal reason if not.
pub fn check(chain: &[String], workflow_id: &str, allow_loop: bool) -> Result<(), String> {
    if chain.len() >= MAX_CHAIN {
        return Err(format!(
            "loop guard: the event's causation chain is {} runs deep ({}), the limit is {MAX_CHAIN}",
            chain.len(),
            chain.join(" -> ")
        ));
    }
    if !allow_loop && chain.iter().any(|w| w == workflow_id) {
        return Err(format!(
            "loop guard: `{workflow_id}` is already in the event's causation chain ({}); set \
             `allow_loop: true` on the trigger to let it start again (bounded at {MAX_CHAIN})",
            chain.join(" -> ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_fresh_event_starts_anything() {
        assert_eq!(check(&[], "a", false), Ok(()));
        assert_eq!(check(&chain(&["a"]), "b", false), Ok(()));
    }

    #[test]
    fn a_workflow_in_its_own_chain_is_refused_unless_it_opts_in() {
        let why = check(&chain(&["a", "b"]), "a", false).unwrap_err();
        assert!(
            why.contains("`a` is already in") && why.contains("a -> b"),
            "{why}"
        );
        assert_eq!(check(&chain(&["a", "b"]), "a", true), Ok(()));
    }

    #[test]
    fn the_depth_bound_holds_even_with_allow_loop() {
        let long: Vec<String> = (0..MAX_CHAIN).map(|_| "a".to_owned()).collect();
        let why = check(&long, "a", true).unwrap_err();
        assert!(why.contains("8 runs deep"), "{why}");
        assert_eq!(check(&long[1..], "a", true), Ok(()));
    }
}

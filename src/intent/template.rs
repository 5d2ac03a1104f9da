//! Voice phrase templates: the syntax users write in a workflow's `voice` trigger, parsed to a tree.
//!
//! Syntax: plain words; `(a|b c)` alternatives (nestable, a branch may be empty); `[word]` or
//! `[several words]` optional parts; `{name}` a free-text slot (one or more words);
//! `{name:number}` a number slot; `{name:low|medium|high}` a slot whose value is one of the listed
//! options (options may have several words). Example: `remind me in {minutes:number} minutes to
//! {task}`. Errors carry a 1-based character column.

use serde::Serialize;

/// A template that could not be parsed, with the column of the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}voice phrase \"{phrase}\", column {column}: {message}", workflow_prefix(.workflow_id))]
pub struct TemplateError {
    /// 1-based character column the problem was found at.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The template text as written.
    pub phrase: String,
    /// The workflow the phrase belongs to, when known.
    pub workflow_id: Option<String>,
}

/// Errors of the intent module.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntentError {
    /// Some voice phrases could not be parsed; each error names its workflow, phrase and column.
    #[error("{} invalid voice phrase(s); fix them in the workflows' voice triggers:\n{}", .0.len(), list(.0))]
    InvalidPhrases(Vec<TemplateError>),
}

impl From<Vec<TemplateError>> for IntentError {
    fn from(errors: Vec<TemplateError>) -> Self {
        IntentError::InvalidPhrases(errors)
    }
}

/// One error per line, for [`IntentError`]'s message.
fn list(errors: &[TemplateError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Formats the workflow part of a [`TemplateError`] message.
fn workflow_prefix(workflow: &Option<String>) -> String {
    workflow
        .as_ref()
        .map(|w| format!("workflow \"{w}\": "))
        .unwrap_or_default()
}

/// What kind of value a slot takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// Any words (at least one).
    Text,
    /// One number, in digits or words.
    Number,
    /// One of the listed options; the value is the option as written in the template.
    List(Vec<String>),
}

/// One part of a parsed template.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// Literal text as written (may hold several words and punctuation, e.g. "what's the").
    Text(String),
    /// Parts that follow each other.
    Sequence(Vec<Node>),
    /// Exactly one of the branches (an empty branch makes the group optional).
    Choice(Vec<Node>),
    /// A part that may be left out.
    Optional(Box<Node>),
    /// A slot to capture a value.
    Slot {
        /// The slot's name, the key of its value.
        name: String,
        /// What values it takes.
        kind: SlotKind,
    },
}

/// A parsed voice phrase template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// The text as written.
    pub source: String,
    /// The parsed tree (a [`Node::Sequence`]).
    pub root: Node,
}

/// Parses a template such as `(play|put on) {song}`; see the module docs for the syntax.
pub fn parse_template(s: &str) -> Result<Template, TemplateError> {
    let chars: Vec<char> = s.chars().collect();
    let mut parser = Parser {
        chars: &chars,
        pos: 0,
        source: s,
    };
    let root = parser.sequence_with_branches(None)?;
    if parser.pos < chars.len() {
        let c = chars[parser.pos];
        return Err(parser.error(parser.pos, format!("unexpected '{c}' with no group open")));
    }
    if !can_be_nonempty(&root) {
        return Err(parser.error(
            0,
            "the phrase has no words; write at least one word".to_string(),
        ));
    }
    if matches_empty(&root) {
        return Err(parser.error(
            0,
            "every part of the phrase is optional, so it would match silence; make a word required"
                .to_string(),
        ));
    }
    Ok(Template {
        source: s.to_string(),
        root,
    })
}

/// True when some path through `node` contains a word or slot.
fn can_be_nonempty(node: &Node) -> bool {
    match node {
        Node::Text(t) => t.chars().any(char::is_alphanumeric),
        Node::Sequence(parts) | Node::Choice(parts) => parts.iter().any(can_be_nonempty),
        Node::Optional(inner) => can_be_nonempty(inner),
        Node::Slot { .. } => true,
    }
}

/// True when some path through `node` has no word and no slot.
fn matches_empty(node: &Node) -> bool {
    match node {
        Node::Text(t) => !t.chars().any(char::is_alphanumeric),
        Node::Sequence(parts) => parts.iter().all(matches_empty),
        Node::Choice(parts) => parts.iter().any(matches_empty),
        Node::Optional(_) => true,
        Node::Slot { .. } => false,
    }
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    source: &'a str,
}

impl Parser<'_> {
    fn error(&self, index: usize, message: String) -> TemplateError {
        TemplateError {
            column: index + 1,
            message,
            phrase: self.source.to_string(),
            workflow_id: None,
        }
    }

    /// Parses branches separated by `|` until the closing `close` (consumed), or the end of
    /// input when `close` is `None`. `open` is the index of the opening bracket.
    fn sequence_with_branches(
        &mut self,
        group: Option<(char, usize)>,
    ) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut parts = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, parts: &mut Vec<Node>| {
            if !text.trim().is_empty() {
                parts.push(Node::Text(text.trim().to_string()));
            }
            text.clear();
        };
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos];
            match c {
                '(' | '[' => {
                    flush(&mut text, &mut parts);
                    parts.push(self.group(c)?);
                }
                ')' | ']' => {
                    self.check_close(c, group)?;
                    self.pos += 1;
                    flush(&mut text, &mut parts);
                    branches.push(Node::Sequence(parts));
                    return Ok(if branches.len() == 1 {
                        branches.pop().unwrap_or(Node::Sequence(Vec::new()))
                    } else {
                        Node::Choice(branches)
                    });
                }
                '|' => {
                    if group.is_none() {
                        return Err(self.error(
                            self.pos,
                            "'|' outside a group; wrap the alternatives in parentheses: (a|b)"
                                .to_string(),
                        ));
                    }
                    self.pos += 1;
                    flush(&mut text, &mut parts);
                    branches.push(Node::Sequence(std::mem::take(&mut parts)));
                }
                '{' => {
                    flush(&mut text, &mut parts);
                    parts.push(self.slot()?);
                }
                '}' => {
                    return Err(
                        self.error(self.pos, "unexpected '}' with no slot open".to_string())
                    );
                }
                _ => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if let Some((open_char, open)) = group {
            return Err(self.error(
                open,
                format!("unclosed '{open_char}' opened at column {}", open + 1),
            ));
        }
        flush(&mut text, &mut parts);
        Ok(Node::Sequence(parts))
    }

    /// Parses a `(...)` or `[...]` group; `pos` is at its opening bracket `c`.
    fn group(&mut self, c: char) -> Result<Node, TemplateError> {
        let open = self.pos;
        self.pos += 1;
        let inner = self.sequence_with_branches(Some((c, open)))?;
        if !can_be_nonempty(&inner) {
            return Err(self.error(
                open,
                format!("empty '{c}' group; put words inside or remove it"),
            ));
        }
        Ok(if c == '[' {
            Node::Optional(Box::new(inner))
        } else {
            inner
        })
    }

    /// Checks that the closing bracket `c` at `pos` closes the open `group`.
    fn check_close(&self, c: char, group: Option<(char, usize)>) -> Result<(), TemplateError> {
        let Some((open_char, open)) = group else {
            return Err(self.error(self.pos, format!("unexpected '{c}' with no group open")));
        };
        let expected = if open_char == '(' { ')' } else { ']' };
        if c != expected {
            return Err(self.error(
                self.pos,
                format!(
                    "'{c}' closes '{open_char}' opened at column {}; expected '{expected}'",
                    open + 1
                ),
            ));
        }
        Ok(())
    }

    /// Parses `{name}`, `{name:number}` or `{name:a|b}`; `pos` is at the `{`.
    fn slot(&mut self) -> Result<Node, TemplateError> {
        let open = self.pos;
        let Some(close_offset) = self.chars[open + 1..].iter().position(|&c| c == '}') else {
            return Err(self.error(open, format!("unclosed '{{' opened at column {}", open + 1)));
        };
        let close = open + 1 + close_offset;
        if let Some(bad) = self.chars[open + 1..close]
            .iter()
            .position(|&c| "{([])".contains(c))
        {
            let at = open + 1 + bad;
            return Err(self.error(
                at,
                format!(
                    "'{}' inside slot opened at column {}; a slot holds only a name and a type",
                    self.chars[at],
                    open + 1
                ),
            ));
        }
        self.pos = close + 1;
        let body: String = self.chars[open + 1..close].iter().collect();
        let (name, kind_text) = match body.split_once(':') {
            Some((n, k)) => (n.trim(), Some(k)),
            None => (body.trim(), None),
        };
        if name.is_empty() {
            return Err(self.error(
                open,
                "slot has no name; write {name} or {name:number}".to_string(),
            ));
        }
        if let Some(bad) = name.chars().find(|c| !(c.is_alphanumeric() || *c == '_')) {
            return Err(self.error(
                open + 1,
                format!("slot name \"{name}\" contains '{bad}'; use letters, digits and '_'"),
            ));
        }
        let kind_column = open + 2 + name.chars().count();
        let kind = match kind_text.map(str::trim) {
            None | Some("text") => SlotKind::Text,
            Some("number") => SlotKind::Number,
            Some(list) if list.contains('|') => {
                let options: Vec<String> = list.split('|').map(|o| o.trim().to_string()).collect();
                if options
                    .iter()
                    .any(|o| !o.chars().any(char::is_alphanumeric))
                {
                    return Err(self.error(
                        kind_column,
                        format!("slot \"{name}\" has an empty option; write options like {{{name}:low|high}}"),
                    ));
                }
                SlotKind::List(options)
            }
            Some(other) => {
                return Err(self.error(
                    kind_column,
                    format!("unknown slot type '{other}', expected number or a list a|b"),
                ));
            }
        };
        Ok(Node::Slot {
            name: name.to_string(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Node {
        Node::Text(s.to_string())
    }

    #[test]
    fn parses_plain_words() {
        let t = parse_template("morning briefing").unwrap();
        assert_eq!(t.root, Node::Sequence(vec![text("morning briefing")]));
    }

    #[test]
    fn parses_alternatives_optionals_and_slots() {
        let t = parse_template("(play|put on) {song}").unwrap();
        assert_eq!(
            t.root,
            Node::Sequence(vec![
                Node::Choice(vec![
                    Node::Sequence(vec![text("play")]),
                    Node::Sequence(vec![text("put on")])
                ]),
                Node::Slot {
                    name: "song".into(),
                    kind: SlotKind::Text
                },
            ])
        );
        let t = parse_template("what's [the] weather [like] [today]").unwrap();
        let Node::Sequence(parts) = &t.root else {
            panic!("not a sequence")
        };
        assert_eq!(parts.len(), 5);
        assert_eq!(
            parts[1],
            Node::Optional(Box::new(Node::Sequence(vec![text("the")])))
        );
    }

    #[test]
    fn parses_slot_types() {
        let t = parse_template("set volume to {level:low|medium|high}").unwrap();
        let Node::Sequence(parts) = &t.root else {
            panic!("not a sequence")
        };
        assert_eq!(
            parts[1],
            Node::Slot {
                name: "level".into(),
                kind: SlotKind::List(vec!["low".into(), "medium".into(), "high".into()])
            }
        );
        let t = parse_template("remind me in {minutes:number} minutes to {task}").unwrap();
        let Node::Sequence(parts) = &t.root else {
            panic!("not a sequence")
        };
        assert_eq!(
            parts[1],
            Node::Slot {
                name: "minutes".into(),
                kind: SlotKind::Number
            }
        );
        let t = parse_template("play {room: living room | kitchen}").unwrap();
        let Node::Sequence(parts) = &t.root else {
            panic!("not a sequence")
        };
        assert_eq!(
            parts[1],
            Node::Slot {
                name: "room".into(),
                kind: SlotKind::List(vec!["living room".into(), "kitchen".into()])
            }
        );
    }

    #[test]
    fn nests_groups() {
        let t =
            parse_template("turn (on|off) [the] (light|lights [in the (kitchen|hall)])").unwrap();
        assert!(matches!(t.root, Node::Sequence(ref p) if p.len() == 4));
        // An empty branch makes a choice optional.
        assert!(parse_template("(please|) stop").is_ok());
    }

    #[test]
    fn errors_carry_columns() {
        let cases: &[(&str, usize, &str)] = &[
            ("play (music|song", 6, "unclosed '(' opened at column 6"),
            ("what's [the weather", 8, "unclosed '[' opened at column 8"),
            ("remind me {task", 11, "unclosed '{' opened at column 11"),
            (
                "in {m:nmber} minutes",
                7,
                "unknown slot type 'nmber', expected number or a list a|b",
            ),
            ("play music)", 11, "unexpected ')' with no group open"),
            (
                "(a|b]",
                5,
                "']' closes '(' opened at column 1; expected ')'",
            ),
            ("set {} now", 5, "slot has no name"),
            ("set {a b} now", 6, "slot name \"a b\" contains ' '"),
            ("set {x:low||high}", 8, "slot \"x\" has an empty option"),
            ("play a|b", 7, "'|' outside a group"),
            ("go () now", 4, "empty '(' group"),
            ("[maybe] [later]", 1, "every part of the phrase is optional"),
            ("  ", 1, "the phrase has no words"),
            ("x {a{b}}", 5, "'{' inside slot opened at column 3"),
        ];
        for (template, column, message) in cases {
            let err = parse_template(template).expect_err(template);
            assert_eq!(err.column, *column, "{template}: {err}");
            assert!(
                err.message.starts_with(message),
                "{template}: {}",
                err.message
            );
        }
    }

    #[test]
    fn intent_error_lists_every_phrase() {
        let errors = vec![
            parse_template("a (").unwrap_err(),
            parse_template("b {x").unwrap_err(),
        ];
        let message = IntentError::from(errors).to_string();
        assert!(
            message.starts_with("2 invalid voice phrase(s)"),
            "{message}"
        );
        assert!(
            message.contains("\"a (\", column 3") && message.contains("\"b {x\", column 3"),
            "{message}"
        );
    }

    #[test]
    fn error_display_names_phrase_and_workflow() {
        let mut err = parse_template("play (x").unwrap_err();
        err.workflow_id = Some("music".into());
        assert_eq!(
            err.to_string(),
            "workflow \"music\": voice phrase \"play (x\", column 6: unclosed '(' opened at column 6"
        );
    }
}

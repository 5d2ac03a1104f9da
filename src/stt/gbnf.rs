//! A grammar for guided decoding: a subset of GBNF (the grammar format of llama.cpp and
//! whisper.cpp) parsed into a byte-level automaton.
//!
//! whisper-rs 0.16 exposes whisper.cpp's grammar sampling (`FullParams::set_grammar`) but hands
//! whisper.cpp the flat element array where it expects an array of pointers to rules, so any
//! grammar would crash it. Atlas therefore applies its own grammar in a logits filter (see
//! `guide`), and this module is the grammar: rules `name ::= ...` made of string literals
//! (`"turn on"`, escapes `\" \\ \n \t \xHH`), character classes (`[a-z]`, `[^ .]`), rule
//! references, groups `( ... )`, alternatives `|` and the postfix operators `?`, `*`, `+`;
//! `#` starts a comment. The start rule is `root`. Rules may not refer to themselves (directly or
//! not): a command grammar is regular, and this keeps the automaton finite.
//!
//! The automaton reads UTF-8 bytes; a class matches ASCII characters as written and, when negated,
//! any byte it does not list (so `[^ ]` accepts every byte of a non-ASCII letter).

use std::collections::HashMap;

use super::SttError;

/// A parsed grammar, ready to guide decoding. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Grammar {
    states: Vec<State>,
    /// `closures[s]`: what `s` reaches without reading (see [`closures`]).
    closures: Vec<Vec<u32>>,
    start: u32,
}

/// A set of 256 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    fn empty() -> Self {
        ByteSet([0; 4])
    }
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
    fn negated(self) -> Self {
        ByteSet(self.0.map(|w| !w))
    }
}

#[derive(Debug, Clone)]
enum State {
    /// Reads one byte of the set, then goes to `next`.
    Byte(ByteSet, u32),
    /// Goes to both without reading.
    Split(u32, u32),
    /// Goes on without reading (a placeholder a fragment is patched through).
    Jump(u32),
    /// The grammar is satisfied here.
    Match,
}

/// The parsed form of a rule's right-hand side.
#[derive(Debug, Clone)]
enum Expr {
    Bytes(Vec<u8>),
    Class(ByteSet),
    Rule(String),
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Opt(Box<Expr>),
    Star(Box<Expr>),
    Plus(Box<Expr>),
}

impl Grammar {
    /// Parses GBNF text whose start rule is `root`; see the module docs for the subset.
    pub fn parse(text: &str) -> Result<Grammar, SttError> {
        let rules = Parser::new(text).rules()?;
        let root = rules
            .get("root")
            .ok_or_else(|| SttError::Grammar("the grammar has no `root` rule".into()))?;
        let mut b = Builder {
            rules: &rules,
            states: Vec::new(),
            open: Vec::new(),
        };
        let (start, end) = b.compile(root)?;
        let done = b.push(State::Match);
        b.patch(end, done);
        Ok(Grammar {
            closures: closures(&b.states),
            states: b.states,
            start,
        })
    }

    /// The states reached before reading anything.
    pub(crate) fn start(&self) -> Vec<u32> {
        self.closures[self.start as usize].clone()
    }

    /// The states reached from `set` by reading `bytes` (empty once the text left the grammar).
    pub(crate) fn advance(&self, set: &[u32], bytes: &[u8]) -> Vec<u32> {
        let mut cur = set.to_vec();
        let mut next = Vec::new();
        for &b in bytes {
            self.step(&cur, b, &mut next);
            std::mem::swap(&mut cur, &mut next);
            if cur.is_empty() {
                break;
            }
        }
        cur
    }

    /// Writes to `out` the states reached from `set` by reading `byte` (sorted, no duplicates).
    pub(crate) fn step(&self, set: &[u32], byte: u8, out: &mut Vec<u32>) {
        out.clear();
        for &s in set {
            if let State::Byte(bytes, next) = &self.states[s as usize]
                && bytes.contains(byte)
            {
                out.extend_from_slice(&self.closures[*next as usize]);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The bytes some state of `set` may read next.
    pub(crate) fn next_bytes(&self, set: &[u32]) -> ByteSet {
        let mut all = ByteSet::empty();
        for &s in set {
            if let State::Byte(bytes, _) = &self.states[s as usize] {
                for (w, b) in all.0.iter_mut().zip(bytes.0) {
                    *w |= b;
                }
            }
        }
        all
    }

    /// True when the grammar is satisfied in one of the states of `set`.
    pub(crate) fn accepts_in(&self, set: &[u32]) -> bool {
        set.iter()
            .any(|&s| matches!(self.states[s as usize], State::Match))
    }

    /// True when the whole of `text` is a sentence of the grammar.
    pub fn accepts(&self, text: &str) -> bool {
        self.accepts_in(&self.advance(&self.start(), text.as_bytes()))
    }
}

/// For every state, the reading and matching states reached from it without reading (sorted).
fn closures(states: &[State]) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); states.len()];
    let mut seen = vec![usize::MAX; states.len()];
    let mut stack = Vec::new();
    for (from, closure) in out.iter_mut().enumerate() {
        stack.push(from as u32);
        while let Some(s) = stack.pop() {
            if seen[s as usize] == from {
                continue;
            }
            seen[s as usize] = from;
            match &states[s as usize] {
                State::Split(a, b) => stack.extend([*b, *a]),
                State::Jump(a) => stack.push(*a),
                State::Byte(..) | State::Match => closure.push(s),
            }
        }
        closure.sort_unstable();
    }
    out
}

/// Thompson construction: every fragment has one entry and one dangling exit (a `Jump` to patch).
struct Builder<'a> {
    rules: &'a HashMap<String, Expr>,
    states: Vec<State>,
    /// Rules being compiled (to refuse recursion).
    open: Vec<String>,
}

/// Most automaton states a grammar may compile to (a guard against exponential inlining).
const MAX_STATES: usize = 1_000_000;

impl Builder<'_> {
    fn push(&mut self, s: State) -> u32 {
        self.states.push(s);
        (self.states.len() - 1) as u32
    }

    fn patch(&mut self, exit: u32, to: u32) {
        self.states[exit as usize] = State::Jump(to);
    }

    fn dangling(&mut self) -> u32 {
        self.push(State::Jump(u32::MAX))
    }

    /// Compiles `e`; returns (entry, exit), the exit a `Jump` still to be patched.
    fn compile(&mut self, e: &Expr) -> Result<(u32, u32), SttError> {
        if self.states.len() > MAX_STATES {
            return Err(SttError::Grammar(format!(
                "the grammar is too large (over {MAX_STATES} states)"
            )));
        }
        Ok(match e {
            Expr::Bytes(bytes) => {
                let exit = self.dangling();
                let mut next = exit;
                for &b in bytes.iter().rev() {
                    let mut set = ByteSet::empty();
                    set.insert(b);
                    next = self.push(State::Byte(set, next));
                }
                (next, exit)
            }
            Expr::Class(set) => {
                let exit = self.dangling();
                (self.push(State::Byte(*set, exit)), exit)
            }
            Expr::Rule(name) => self.rule(name)?,
            Expr::Seq(parts) => {
                let exit = self.dangling();
                let entry = self.dangling();
                let mut last = entry;
                for p in parts {
                    let (s, x) = self.compile(p)?;
                    self.patch(last, s);
                    last = x;
                }
                self.patch(last, exit);
                (entry, exit)
            }
            Expr::Alt(branches) => {
                let exit = self.dangling();
                let mut entry = None;
                for b in branches.iter().rev() {
                    let (s, x) = self.compile(b)?;
                    self.patch(x, exit);
                    entry = Some(match entry {
                        None => s,
                        Some(rest) => self.push(State::Split(s, rest)),
                    });
                }
                (entry.unwrap_or(exit), exit)
            }
            Expr::Opt(inner) => {
                let (s, x) = self.compile(inner)?;
                let exit = self.dangling();
                self.patch(x, exit);
                (self.push(State::Split(s, exit)), exit)
            }
            Expr::Star(inner) => {
                let (s, x) = self.compile(inner)?;
                let exit = self.dangling();
                let entry = self.push(State::Split(s, exit));
                self.patch(x, entry);
                (entry, exit)
            }
            Expr::Plus(inner) => {
                let (s, x) = self.compile(inner)?;
                let exit = self.dangling();
                let again = self.push(State::Split(s, exit));
                self.patch(x, again);
                (s, exit)
            }
        })
    }

    fn rule(&mut self, name: &str) -> Result<(u32, u32), SttError> {
        let rules = self.rules;
        let body = rules.get(name).ok_or_else(|| {
            SttError::Grammar(format!("the rule `{name}` is used but not defined"))
        })?;
        if self.open.iter().any(|r| r == name) {
            return Err(SttError::Grammar(format!(
                "the rule `{name}` refers to itself; use `*` or `+` for repetition"
            )));
        }
        self.open.push(name.to_owned());
        let out = self.compile(body);
        self.open.pop();
        out
    }
}

/// A recursive-descent parser over the GBNF text.
struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            src: text.as_bytes(),
            pos: 0,
        }
    }

    fn err(&self, what: &str) -> SttError {
        let line = self.src[..self.pos].iter().filter(|&&b| b == b'\n').count() + 1;
        SttError::Grammar(format!("line {line}: {what}"))
    }

    /// Skips blanks, newlines and comments.
    fn skip(&mut self) {
        while let Some(&c) = self.src.get(self.pos) {
            if c == b'#' {
                while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                    self.pos += 1;
                }
            } else if c.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn name_at(&self, at: usize) -> Option<(&'a str, usize)> {
        let len = self.src[at..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b'_')
            .count();
        let name = std::str::from_utf8(&self.src[at..at + len]).ok()?;
        (len > 0).then_some((name, at + len))
    }

    /// True when a rule definition (`name ::=`) starts here.
    fn at_definition(&self) -> bool {
        let Some((_, mut end)) = self.name_at(self.pos) else {
            return false;
        };
        while self.src.get(end).is_some_and(|c| *c == b' ' || *c == b'\t') {
            end += 1;
        }
        self.src[end..].starts_with(b"::=")
    }

    fn rules(mut self) -> Result<HashMap<String, Expr>, SttError> {
        let mut rules = HashMap::new();
        self.skip();
        while self.pos < self.src.len() {
            let (name, end) = self
                .name_at(self.pos)
                .ok_or_else(|| self.err("expected a rule name"))?;
            self.pos = end;
            self.skip();
            if !self.src[self.pos..].starts_with(b"::=") {
                return Err(self.err(&format!("expected `::=` after `{name}`")));
            }
            self.pos += 3;
            let body = self.alternatives()?;
            if rules.insert(name.to_owned(), body).is_some() {
                return Err(self.err(&format!("the rule `{name}` is defined twice")));
            }
            self.skip();
        }
        Ok(rules)
    }

    fn alternatives(&mut self) -> Result<Expr, SttError> {
        let mut branches = vec![self.sequence()?];
        loop {
            self.skip();
            if self.src.get(self.pos) == Some(&b'|') {
                self.pos += 1;
                branches.push(self.sequence()?);
            } else {
                break;
            }
        }
        Ok(if branches.len() == 1 {
            branches.remove(0)
        } else {
            Expr::Alt(branches)
        })
    }

    fn sequence(&mut self) -> Result<Expr, SttError> {
        let mut parts = Vec::new();
        loop {
            self.skip();
            let Some(&c) = self.src.get(self.pos) else {
                break;
            };
            if c == b'|' || c == b')' || self.at_definition() {
                break;
            }
            let item = self.item()?;
            parts.push(self.postfix(item));
        }
        Ok(Expr::Seq(parts))
    }

    fn postfix(&mut self, item: Expr) -> Expr {
        match self.src.get(self.pos) {
            Some(b'?') => {
                self.pos += 1;
                Expr::Opt(Box::new(item))
            }
            Some(b'*') => {
                self.pos += 1;
                Expr::Star(Box::new(item))
            }
            Some(b'+') => {
                self.pos += 1;
                Expr::Plus(Box::new(item))
            }
            _ => item,
        }
    }

    fn item(&mut self) -> Result<Expr, SttError> {
        match self.src[self.pos] {
            b'"' => {
                self.pos += 1;
                let mut bytes = Vec::new();
                loop {
                    match self.src.get(self.pos) {
                        None => return Err(self.err("a string is not closed")),
                        Some(b'"') => break,
                        _ => bytes.push(self.char_byte()?),
                    }
                }
                self.pos += 1;
                Ok(Expr::Bytes(bytes))
            }
            b'[' => self.class(),
            b'(' => {
                self.pos += 1;
                let inner = self.alternatives()?;
                self.skip();
                if self.src.get(self.pos) != Some(&b')') {
                    return Err(self.err("a group is not closed with `)`"));
                }
                self.pos += 1;
                Ok(inner)
            }
            _ => {
                let (name, end) = self
                    .name_at(self.pos)
                    .ok_or_else(|| self.err("expected a string, a class, a group or a rule"))?;
                self.pos = end;
                Ok(Expr::Rule(name.to_owned()))
            }
        }
    }

    fn class(&mut self) -> Result<Expr, SttError> {
        self.pos += 1;
        let negate = self.src.get(self.pos) == Some(&b'^');
        if negate {
            self.pos += 1;
        }
        let mut set = ByteSet::empty();
        loop {
            match self.src.get(self.pos) {
                None => return Err(self.err("a character class is not closed with `]`")),
                Some(b']') => break,
                _ => {
                    let lo = self.char_byte()?;
                    let hi = if self.src.get(self.pos) == Some(&b'-')
                        && self.src.get(self.pos + 1).is_some_and(|c| *c != b']')
                    {
                        self.pos += 1;
                        self.char_byte()?
                    } else {
                        lo
                    };
                    for b in lo..=hi {
                        set.insert(b);
                    }
                }
            }
        }
        self.pos += 1;
        Ok(Expr::Class(if negate { set.negated() } else { set }))
    }

    /// One byte of a string or class, with its escape.
    fn char_byte(&mut self) -> Result<u8, SttError> {
        let c = self.src[self.pos];
        self.pos += 1;
        if c != b'\\' {
            return Ok(c);
        }
        let e = *self
            .src
            .get(self.pos)
            .ok_or_else(|| self.err("an escape is cut short"))?;
        self.pos += 1;
        Ok(match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'x' => {
                let hex = self
                    .src
                    .get(self.pos..self.pos + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| self.err("`\\x` needs two hex digits"))?;
                self.pos += 2;
                hex
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_alternatives_and_repetition() {
        let g = Grammar::parse(
            "root ::= \" \" [Tt] \"urn \" (\"on\" | \"off\") \" the\" word+ [.!]? # a comment\n\
             word ::= \" \" [^ .!]+",
        )
        .unwrap();
        for ok in [
            " Turn on the lights.",
            " turn off the kitchen lights",
            " Turn on the café!",
        ] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in [
            " Turn up the lights",
            " Turn on the",
            "Turn on the lights",
            " Turn on the lights..",
        ] {
            assert!(!g.accepts(bad), "{bad}");
        }
        // A prefix is alive (not yet accepted), a wrong byte is not.
        let set = g.advance(&g.start(), b" Turn o");
        assert!(!set.is_empty() && !g.accepts_in(&set));
        assert!(g.advance(&g.start(), b" Turn u").is_empty());
    }

    #[test]
    fn rules_span_lines_and_escapes_work() {
        let g = Grammar::parse(
            "root ::= greet\n  | \"say \\\"hi\\\"\"\ngreet ::=\n  \"hello\"\n  (\"!\")?",
        )
        .unwrap();
        assert!(g.accepts("hello") && g.accepts("hello!") && g.accepts("say \"hi\""));
        assert!(!g.accepts("hello!!"));
    }

    #[test]
    fn broken_grammars_say_what_is_wrong() {
        for (text, needle) in [
            ("start ::= \"a\"", "root"),
            ("root ::= \"a", "not closed"),
            ("root ::= other", "not defined"),
            ("root ::= \"a\" root", "refers to itself"),
            ("root ::= [a-", "not closed"),
            ("root \"a\"", "::="),
            ("root ::= (\"a\"", "not closed"),
        ] {
            let err = Grammar::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}

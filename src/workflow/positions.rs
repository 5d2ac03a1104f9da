//! Where each value of a YAML document stands, so that errors can name a line and a column.
//!
//! serde tells us *which* field is wrong (as a path such as `actions[2].config.url`) but a
//! `serde_json::Value` has forgotten where that field was in the file. This module walks the YAML
//! event stream once and records the position of every key and value under its path.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A line and column in a source file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// Positions of the values of one YAML document, by path.
#[derive(Debug, Default)]
pub struct Positions {
    by_path: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Indexes `source`. A document that does not scan yields an empty index: the YAML parser
    /// proper reports that error with its own position.
    pub fn index(source: &str) -> Positions {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(source);
        if parser.load(&mut walker, false).is_err() {
            return Positions::default();
        }
        Positions {
            by_path: walker.out,
            keys: walker.keys,
        }
    }

    /// The position of the key that names `path` (for "unknown field" errors), else as [`find`].
    ///
    /// [`find`]: Positions::find
    pub fn find_key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.find(path))
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut path = path;
        loop {
            if let Some(pos) = self.by_path.get(path) {
                return Some(*pos);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<(Frame, String)>,
    out: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Walker {
    /// The path of the value that starts now, advancing the parent's state.
    fn next_path(&mut self, scalar_key: Option<&str>) -> Option<String> {
        let (frame, base) = self.stack.last_mut()?;
        match frame {
            Frame::Seq { index } => {
                let path = format!("{base}[{index}]");
                *index += 1;
                Some(path)
            }
            Frame::Map { key } => match key.take() {
                Some(k) => Some(join(base, &k)),
                None => {
                    // This node is a key. Remember it; positions of keys are recorded under the
                    // path they name so an unknown field points at itself.
                    *key = Some(scalar_key.unwrap_or("?").to_owned());
                    None
                }
            },
        }
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

fn pos(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                let is_key = matches!(self.stack.last(), Some((Frame::Map { key: None }, _)));
                if is_key {
                    let base = self
                        .stack
                        .last()
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default();
                    self.out.entry(join(&base, &value)).or_insert(pos(mark));
                    self.keys.entry(join(&base, &value)).or_insert(pos(mark));
                    self.next_path(Some(&value));
                } else if let Some(path) = self.next_path(None) {
                    // A value overrides its key's position: errors about a value point at it.
                    self.out.insert(path, pos(mark));
                }
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_path(None) {
                    self.out.insert(path, pos(mark));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() {
                    Some(String::new())
                } else {
                    self.next_path(None)
                };
                let path = path.unwrap_or_default();
                if !path.is_empty() {
                    self.out.insert(path.clone(), pos(mark));
                }
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { index: 0 }
                };
                self.stack.push((frame, path));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_and_falls_back_to_ancestors() {
        let src = "id: x\nactions:\n  - id: a\n    config:\n      url: http://h\n  - id: b\n";
        let p = Positions::index(src);
        assert_eq!(p.find("id"), Some(Pos { line: 1, column: 5 }));
        assert_eq!(
            p.find("actions[0].config.url"),
            Some(Pos {
                line: 5,
                column: 12
            })
        );
        assert_eq!(p.find("actions[1].id"), Some(Pos { line: 6, column: 9 }));
        // Unknown child: nearest ancestor.
        assert_eq!(
            p.find("actions[1].id.deeper"),
            Some(Pos { line: 6, column: 9 })
        );
    }
}

//! Where each value of a YAML document stands, so checks made after parsing can
//! point at the exact line and column.
//!
//! serde reports the first syntax or type error with its position; the checks
//! that need the whole model (an unknown place, a cron line that does not parse,
//! a template that does not render) run later, on typed values that no longer
//! know where they came from. [`SourceMap`] closes the gap: it walks the same
//! text once with the YAML event parser and records the position of every node
//! under a path written the way users read it (`steps[2].at`). A check names the
//! path; the map gives the position, falling back to the nearest ancestor.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, Span};

use palabre_core::diagnostic::Position;

/// The position of a node and how many characters its text covers on its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub position: Position,
    pub width: usize,
}

/// Paths of a YAML document mapped to the positions of their values (and keys).
#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<String, Located>,
    keys: HashMap<String, Located>,
}

enum Frame {
    Mapping {
        path: String,
        key: Option<String>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
    /// Inside a complex (non-scalar) mapping key: nothing below is addressable.
    Opaque {
        depth: usize,
    },
}

/// Stops the walk on absurd inputs; serde-saphyr's own budget rejects them anyway.
const MAX_EVENTS: usize = 2_000_000;

fn located(span: &Span) -> Located {
    let start = span.start;
    let width = if span.end.line() == start.line() {
        span.end.index().saturating_sub(start.index())
    } else {
        1
    };
    Located {
        position: Position {
            line: start.line(),
            column: start.col() + 1,
        },
        width: width.max(1),
    }
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl SourceMap {
    /// Indexes the first document of `text`. A syntax error ends the walk early; the
    /// positions seen until then are kept (serde reports the error itself).
    pub fn index(text: &str) -> SourceMap {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut started = false;
        for (count, event) in Parser::new_from_str(text).enumerate() {
            let Ok((event, span)) = event else { break };
            if count > MAX_EVENTS {
                break;
            }
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::MappingStart(..)
                    | Event::Alias(_)
            );
            if is_node {
                let opens = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
                let path = match stack.last_mut() {
                    None if started => break, // a second document: only the first is indexed
                    None => {
                        started = true;
                        Some(String::new())
                    }
                    Some(Frame::Opaque { depth }) => {
                        if opens {
                            *depth += 1;
                        }
                        None
                    }
                    Some(Frame::Sequence { path, next_index }) => {
                        let p = format!("{path}[{next_index}]");
                        *next_index += 1;
                        Some(p)
                    }
                    Some(Frame::Mapping { path, key }) => match key.take() {
                        Some(k) => Some(child_path(path, &k)),
                        None => {
                            // This node is a key.
                            if let Event::Scalar(text, ..) = &event {
                                let k = text.to_string();
                                map.keys.insert(child_path(path, &k), located(&span));
                                *key = Some(k);
                            } else if opens {
                                *key = Some("?".to_owned());
                                stack.push(Frame::Opaque { depth: 1 });
                            } else {
                                *key = Some("?".to_owned());
                            }
                            continue;
                        }
                    },
                };
                let Some(path) = path else { continue };
                map.values
                    .entry(path.clone())
                    .or_insert_with(|| located(&span));
                match event {
                    Event::MappingStart(..) => stack.push(Frame::Mapping { path, key: None }),
                    Event::SequenceStart(..) => stack.push(Frame::Sequence {
                        path,
                        next_index: 0,
                    }),
                    _ => {}
                }
            } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                match stack.last_mut() {
                    Some(Frame::Opaque { depth }) if *depth > 1 => *depth -= 1,
                    _ => {
                        stack.pop();
                    }
                }
            }
        }
        map
    }

    /// The position of the value at `path`, or of its nearest indexed ancestor.
    pub fn value(&self, path: &str) -> Located {
        let mut p = path;
        loop {
            if let Some(found) = self.values.get(p) {
                return *found;
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => {
                    return self.values.get("").copied().unwrap_or(Located {
                        position: Position::START,
                        width: 1,
                    });
                }
            }
        }
    }

    /// The position of the key that names `path` (for "unknown field" style problems),
    /// or of the value when the key is not known.
    pub fn key(&self, path: &str) -> Located {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
id: demo
steps:
  - id: invitation
    at: -7d
  - id: reminder
    at: -1d
place: mopti/koro
";

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn finds_nested_values_by_path() {
        let map = SourceMap::index(DOC);
        assert_eq!(map.value("id").position, at(1, 5));
        assert_eq!(map.value("steps[1].at").position, at(6, 9));
        assert_eq!(map.value("steps[1].at").width, 3);
        assert_eq!(map.value("place").position, at(7, 8));
        assert_eq!(map.key("place").position, at(7, 1));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let map = SourceMap::index(DOC);
        assert_eq!(map.value("steps[0].channels[3]").position, at(3, 5));
        assert_eq!(map.value("nothing.here").position, at(1, 1));
    }

    #[test]
    fn survives_broken_and_hostile_text() {
        for text in ["", ":", "[[[[", "a: [1, 2", "&a [*a]", "? [x]\n: y\nz: 1\n"] {
            let map = SourceMap::index(text);
            let _ = map.value("a.b[0]");
        }
        let deep = "[".repeat(100_000);
        let _ = SourceMap::index(&deep);
    }
}

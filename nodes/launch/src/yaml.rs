//! YAML with line numbers, so that every error in a launch file can say where.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub enum Yaml {
    /// Keys keep their own lines.
    Map(Vec<(String, usize, Yaml)>, usize),
    Seq(Vec<Yaml>, usize),
    /// The text, whether it was written plain (unquoted), and the line.
    Scalar(String, bool, usize),
}

impl Yaml {
    pub fn line(&self) -> usize {
        match self {
            Yaml::Map(_, l) | Yaml::Seq(_, l) | Yaml::Scalar(_, _, l) => *l,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Map(..) => "a mapping",
            Yaml::Seq(..) => "a list",
            Yaml::Scalar(..) => "a value",
        }
    }
}

enum Frame {
    Map(Vec<(String, usize, Yaml)>, usize, Option<(String, usize)>),
    Seq(Vec<Yaml>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    done: Option<Yaml>,
    error: Option<(usize, String)>,
}

impl Builder {
    fn push_value(&mut self, v: Yaml) {
        match self.stack.last_mut() {
            None => self.done = Some(v),
            Some(Frame::Seq(items, _)) => items.push(v),
            Some(Frame::Map(entries, _, key)) => match key.take() {
                None => match v {
                    Yaml::Scalar(k, _, line) => *key = Some((k, line)),
                    other => {
                        if self.error.is_none() {
                            self.error = Some((other.line(), "mapping keys must be plain values".into()));
                        }
                    }
                },
                Some((k, line)) => entries.push((k, line, v)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => self.push_value(Yaml::Scalar(text, style == TScalarStyle::Plain, line)),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq(Vec::new(), line)),
            Event::MappingStart(..) => self.stack.push(Frame::Map(Vec::new(), line, None)),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, l)) = self.stack.pop() {
                    self.push_value(Yaml::Seq(items, l));
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(entries, l, _)) = self.stack.pop() {
                    self.push_value(Yaml::Map(entries, l));
                }
            }
            Event::Alias(_) if self.error.is_none() => {
                self.error = Some((line, "YAML aliases are not supported in launch files".into()));
            }
            _ => {}
        }
    }
}

/// Parses one YAML document. Errors carry the line.
pub fn parse(text: &str) -> Result<Yaml, (usize, String)> {
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(text);
    p.load(&mut b, false).map_err(|e| (e.marker().line(), e.info().to_string()))?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.done.unwrap_or(Yaml::Map(Vec::new(), 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines() {
        let y = parse("launch:\n- node:\n    pkg: a\n    exec: 'b'\n").unwrap();
        let Yaml::Map(top, _) = &y else { panic!() };
        let Yaml::Seq(items, _) = &top[0].2 else { panic!() };
        let Yaml::Map(node, _) = &items[0] else { panic!() };
        let Yaml::Map(fields, _) = &node[0].2 else { panic!() };
        assert_eq!(fields[0], ("pkg".into(), 3, Yaml::Scalar("a".into(), true, 3)));
        assert_eq!(fields[1], ("exec".into(), 4, Yaml::Scalar("b".into(), false, 4)));
        let e = parse("launch:\n  - node: [\n").unwrap_err();
        assert!(e.0 >= 2, "{e:?}");
    }
}

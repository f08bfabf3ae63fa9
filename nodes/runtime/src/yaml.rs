//! YAML with line numbers, so that every error in a launch file can say where.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub enum Yaml {
    /// Entries in file order, each key with its own line, then the line.
    Map(Vec<(String, usize, Yaml)>, usize),
    /// Items, then the line.
    Seq(Vec<Yaml>, usize),
    /// The text, whether it was written plain (unquoted), and the line.
    Scalar(String, bool, usize),
}

impl Yaml {
    /// Where it starts, 1-based (an empty document is a mapping on line 1).
    pub fn line(&self) -> usize {
        match self {
            Yaml::Map(_, l) | Yaml::Seq(_, l) | Yaml::Scalar(_, _, l) => *l,
        }
    }

    /// "a mapping", "a list" or "a value", to end an error message with
    /// ("expected a list, found a mapping").
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

/// A problem at a place in a YAML document: the line, the key path
/// (`actors[2].friction`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, '{key}': {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// The key path.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Yaml {
    /// The fields of a mapping at `path` (for error messages).
    pub fn fields(&self, path: &str) -> Result<Fields<'_>, YamlError> {
        match self {
            Yaml::Map(items, line) => Ok(Fields {
                path: path.to_string(),
                line: *line,
                items: items.iter().map(|(k, l, v)| (k.as_str(), *l, v, false)).collect(),
            }),
            other => {
                Err(YamlError { line: other.line(), key: path.into(), message: format!("expected a mapping, found {}", other.kind()) })
            }
        }
    }

    /// The text of a value, quoted or not (`3` and `true` stay text);
    /// `None` for a list or mapping.
    pub fn scalar(&self) -> Option<&str> {
        match self {
            Yaml::Scalar(s, ..) => Some(s),
            _ => None,
        }
    }
}

/// Reads the fields of one mapping by name; `finish` refuses the ones never read.
/// Getters mark their key read; the optional ones give `None` for an absent
/// key, and all give a [`YamlError`] at the key's line for a value of the
/// wrong shape.
pub struct Fields<'y> {
    path: String,
    line: usize,
    items: Vec<(&'y str, usize, &'y Yaml, bool)>,
}

impl<'y> Fields<'y> {
    /// The mapping's own line, where errors about missing keys point.
    pub fn line(&self) -> usize {
        self.line
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An error about `key` (at its line when present).
    pub fn err(&self, key: &str, message: impl Into<String>) -> YamlError {
        let line = self.items.iter().find(|it| it.0 == key).map(|it| it.1).unwrap_or(self.line);
        YamlError { line, key: self.key_path(key), message: message.into() }
    }

    /// The value, whatever its shape.
    pub fn get(&mut self, key: &str) -> Option<&'y Yaml> {
        self.items.iter_mut().find(|it| it.0 == key).map(|it| {
            it.3 = true;
            it.2
        })
    }

    /// A value's text.
    pub fn str(&mut self, key: &str) -> Result<Option<String>, YamlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Scalar(s, ..)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(key, format!("expected a value, found {}", other.kind()))),
        }
    }

    /// [`Fields::str`]; an absent key is an error too.
    pub fn req_str(&mut self, key: &str) -> Result<String, YamlError> {
        self.str(key)?.ok_or_else(|| self.err(key, format!("'{key}' is required")))
    }

    /// A finite number (NaN and infinities are refused).
    pub fn f64(&mut self, key: &str) -> Result<Option<f64>, YamlError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => {
                s.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some).ok_or_else(|| self.err(key, format!("'{s}' is not a number")))
            }
        }
    }

    /// [`Fields::f64`]; an absent key is an error too.
    pub fn req_f64(&mut self, key: &str) -> Result<f64, YamlError> {
        self.f64(key)?.ok_or_else(|| self.err(key, format!("'{key}' is required")))
    }

    /// A whole number that fits a `u32`.
    pub fn u32(&mut self, key: &str) -> Result<Option<u32>, YamlError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => s.parse::<u32>().map(Some).map_err(|_| self.err(key, format!("'{s}' is not a whole number ≥ 0"))),
        }
    }

    /// `true`, `True`, `yes`, `false`, `False` or `no`.
    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, YamlError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => match s.as_str() {
                "true" | "True" | "yes" => Ok(Some(true)),
                "false" | "False" | "no" => Ok(Some(false)),
                _ => Err(self.err(key, format!("'{s}' is not true or false"))),
            },
        }
    }

    /// The items of a list, unchecked.
    pub fn list(&mut self, key: &str) -> Result<Option<&'y [Yaml]>, YamlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Seq(items, _)) => Ok(Some(items)),
            Some(other) => Err(self.err(key, format!("expected a list, found {}", other.kind()))),
        }
    }

    /// A list of plain values (strings); an item that is a list or a mapping
    /// is refused at its own line (`tags[1]`).
    pub fn str_list(&mut self, key: &str) -> Result<Option<Vec<String>>, YamlError> {
        let Some(items) = self.list(key)? else { return Ok(None) };
        let path = self.key_path(key);
        items
            .iter()
            .enumerate()
            .map(|(i, y)| {
                y.scalar().map(str::to_string).ok_or_else(|| YamlError {
                    line: y.line(),
                    key: format!("{path}[{i}]"),
                    message: format!("expected a value, found {}", y.kind()),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A list of numbers, of exactly `n` when given.
    pub fn f64_list(&mut self, key: &str, n: Option<usize>) -> Result<Option<Vec<f64>>, YamlError> {
        let Some(items) = self.list(key)? else { return Ok(None) };
        let v = items
            .iter()
            .map(|y| y.scalar().and_then(|s| s.parse::<f64>().ok()).filter(|x| x.is_finite()))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| self.err(key, "expected a list of numbers"))?;
        if let Some(n) = n {
            if v.len() != n {
                return Err(self.err(key, format!("expected {n} numbers, found {}", v.len())));
            }
        }
        Ok(Some(v))
    }

    /// A nested mapping, whose errors name the key path (`world.friction`).
    pub fn map(&mut self, key: &str) -> Result<Option<Fields<'y>>, YamlError> {
        let path = self.key_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(y) => y.fields(&path).map(Some),
        }
    }

    /// Refuses keys that were never read, naming the ones that are known.
    pub fn finish(self, known: &[&str]) -> Result<(), YamlError> {
        match self.items.iter().find(|it| !it.3) {
            Some((k, l, ..)) => {
                Err(YamlError { line: *l, key: self.key_path(k), message: format!("unknown key '{k}' (known: {})", known.join(", ")) })
            }
            None => Ok(()),
        }
    }
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

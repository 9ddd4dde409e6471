//! A jq path subset: `.`, `.key`, `."any key"`, `.["key"]`, `[0]`, `[-1]`, `[2:5]`, `[]`, each
//! optionally followed by `?`. Semantics follow jq: a missing key or index gives `null`,
//! indexing `null` gives `null`, indexing a value of the wrong type is an error unless `?`
//! suppresses it (then that branch yields nothing), and `[]` iterates arrays and object values.

use serde_json::Value;
use std::fmt;

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Iterate,
}

/// A parsed path: steps, each with whether `?` follows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    steps: Vec<(Step, bool)>,
}

/// Why a path could not be parsed or evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct PathError(String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

impl Path {
    pub fn parse(text: &str) -> Result<Path, PathError> {
        Parser {
            chars: text.trim().chars().collect(),
            at: 0,
        }
        .path()
    }

    /// Every value the path yields from `root`, in order.
    pub fn evaluate(&self, root: &Value) -> Result<Vec<Value>, PathError> {
        let mut current: Vec<Value> = vec![root.clone()];
        for (step, optional) in &self.steps {
            let mut next = Vec::new();
            for value in &current {
                match apply(step, value) {
                    Ok(values) => next.extend(values),
                    Err(_) if *optional => {}
                    Err(error) => return Err(error),
                }
            }
            current = next;
        }
        Ok(current)
    }
}

fn apply(step: &Step, value: &Value) -> Result<Vec<Value>, PathError> {
    match (step, value) {
        (Step::Key(_) | Step::Index(_) | Step::Slice(..), Value::Null) => Ok(vec![Value::Null]),
        (Step::Key(key), Value::Object(map)) => {
            Ok(vec![map.get(key).cloned().unwrap_or(Value::Null)])
        }
        (Step::Key(key), other) => Err(PathError(format!(
            "cannot index {} with \"{key}\"",
            type_name(other)
        ))),
        (Step::Index(index), Value::Array(items)) => Ok(vec![
            resolve_index(*index, items.len())
                .and_then(|i| items.get(i).cloned())
                .unwrap_or(Value::Null),
        ]),
        (Step::Index(index), other) => Err(PathError(format!(
            "cannot index {} with number {index}",
            type_name(other)
        ))),
        (Step::Slice(start, end), Value::Array(items)) => {
            let (start, end) = slice_bounds(*start, *end, items.len());
            Ok(vec![Value::Array(items[start..end].to_vec())])
        }
        (Step::Slice(start, end), Value::String(text)) => {
            let chars: Vec<char> = text.chars().collect();
            let (start, end) = slice_bounds(*start, *end, chars.len());
            Ok(vec![Value::String(chars[start..end].iter().collect())])
        }
        (Step::Slice(..), other) => Err(PathError(format!("cannot slice {}", type_name(other)))),
        (Step::Iterate, Value::Array(items)) => Ok(items.clone()),
        (Step::Iterate, Value::Object(map)) => Ok(map.values().cloned().collect()),
        (Step::Iterate, other) => Err(PathError(format!(
            "cannot iterate over {}",
            type_name(other)
        ))),
    }
}

/// A possibly negative index as a position in a list of `len` items.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if index < 0 { len + index } else { index };
    usize::try_from(index).ok()
}

/// jq slice bounds: negative counts from the end, everything clamped to the list.
fn slice_bounds(start: Option<i64>, end: Option<i64>, len: usize) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let clamp = |bound: i64| {
        let bound = if bound < 0 { len_i + bound } else { bound };
        usize::try_from(bound.clamp(0, len_i)).unwrap_or(len)
    };
    let start = start.map_or(0, clamp);
    let end = end.map_or(len, clamp);
    (start, end.max(start))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, message: &str) -> PathError {
        let source: String = self.chars.iter().collect();
        PathError(format!(
            "{message} at position {} of the path `{source}`",
            self.at + 1
        ))
    }

    fn path(mut self) -> Result<Path, PathError> {
        let mut steps = Vec::new();
        if self.chars.is_empty() {
            return Err(self.error("empty path; use `.` for the whole document"));
        }
        if self.peek() != Some('.') && self.peek() != Some('[') {
            return Err(self.error("a path starts with `.`, as in `.items[0].name`"));
        }
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.at += 1;
                    match self.peek() {
                        // `.` alone, `.[`, or the end after a trailing `.` of `.` itself.
                        None if steps.is_empty() => {}
                        None => return Err(self.error("expected a key after `.`")),
                        Some('[') => {}
                        Some('"') => {
                            let key = self.string()?;
                            steps.push((Step::Key(key), self.eat('?')));
                        }
                        Some(c) if c.is_alphabetic() || c == '_' => {
                            let key = self.identifier();
                            steps.push((Step::Key(key), self.eat('?')));
                        }
                        Some('.') => {
                            return Err(self.error(
                                "recursive descent `..` is not supported; use `[]` to iterate",
                            ));
                        }
                        Some(_) => return Err(self.error("expected a key after `.`")),
                    }
                }
                '[' => {
                    self.at += 1;
                    let step = self.bracket()?;
                    steps.push((step, self.eat('?')));
                }
                c if c.is_whitespace() => self.at += 1,
                '|' => {
                    return Err(self.error(
                        "pipes and functions are not supported, only paths like `.a[0].b`",
                    ));
                }
                _ => return Err(self.error("unexpected character")),
            }
        }
        Ok(Path { steps })
    }

    fn identifier(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// A double-quoted string with JSON escapes.
    fn string(&mut self) -> Result<String, PathError> {
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.at += 1;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                let literal: String = self.chars[start..self.at].iter().collect();
                return serde_json::from_str(&literal)
                    .map_err(|error| self.error(&format!("bad string {literal}: {error}")));
            }
        }
        self.at = start;
        Err(self.error("unterminated string"))
    }

    fn bracket(&mut self) -> Result<Step, PathError> {
        self.skip_spaces();
        if self.eat(']') {
            return Ok(Step::Iterate);
        }
        if self.peek() == Some('"') {
            let key = self.string()?;
            self.skip_spaces();
            return if self.eat(']') {
                Ok(Step::Key(key))
            } else {
                Err(self.error("expected `]`"))
            };
        }
        let start = self.integer()?;
        self.skip_spaces();
        if self.eat(']') {
            return start
                .map(Step::Index)
                .ok_or_else(|| self.error("expected an index"));
        }
        if !self.eat(':') {
            return Err(self.error("expected `]` or `:`"));
        }
        let end = self.integer()?;
        self.skip_spaces();
        if !self.eat(']') {
            return Err(self.error("expected `]`"));
        }
        Ok(Step::Slice(start, end))
    }

    fn integer(&mut self) -> Result<Option<i64>, PathError> {
        self.skip_spaces();
        let start = self.at;
        if self.peek() == Some('-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == start {
            return Ok(None);
        }
        let text: String = self.chars[start..self.at].iter().collect();
        text.parse()
            .map(Some)
            .map_err(|_| self.error("expected an integer"))
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(path: &str, document: &Value) -> Result<Vec<Value>, PathError> {
        Path::parse(path)?.evaluate(document)
    }

    fn document() -> Value {
        json!({
            "name": "shop",
            "items": [
                {"name": "apple", "price": 1.5, "tags": ["fruit", "red"]},
                {"name": "bread", "price": 3, "tags": []},
                {"name": "cheese", "price": 7.25}
            ],
            "owner": {"first name": "Ada", "age": 36},
            "count": 3,
            "empty": null
        })
    }

    #[test]
    fn identity_and_keys() {
        let doc = document();
        assert_eq!(query(".", &doc).unwrap(), vec![doc.clone()]);
        assert_eq!(query(".name", &doc).unwrap(), vec![json!("shop")]);
        assert_eq!(query(".owner.age", &doc).unwrap(), vec![json!(36)]);
        assert_eq!(
            query(r#".owner."first name""#, &doc).unwrap(),
            vec![json!("Ada")]
        );
        assert_eq!(
            query(r#".owner["first name"]"#, &doc).unwrap(),
            vec![json!("Ada")]
        );
        assert_eq!(query(r#".["count"]"#, &doc).unwrap(), vec![json!(3)]);
    }

    #[test]
    fn missing_and_null_give_null() {
        let doc = document();
        assert_eq!(query(".missing", &doc).unwrap(), vec![Value::Null]);
        assert_eq!(query(".empty.deeper[0]", &doc).unwrap(), vec![Value::Null]);
        assert_eq!(query(".items[10]", &doc).unwrap(), vec![Value::Null]);
    }

    #[test]
    fn indexes_and_slices() {
        let doc = document();
        assert_eq!(query(".items[0].name", &doc).unwrap(), vec![json!("apple")]);
        assert_eq!(
            query(".items[-1].name", &doc).unwrap(),
            vec![json!("cheese")]
        );
        assert_eq!(
            query(".items[1:].name", &doc).unwrap_err(),
            PathError("cannot index array with \"name\"".into())
        );
        assert_eq!(
            query(".items[1:].name?", &doc).unwrap(),
            Vec::<Value>::new()
        );
        assert_eq!(
            query(".items[:2][].name", &doc).unwrap(),
            vec![json!("apple"), json!("bread")]
        );
        assert_eq!(
            query(".items[-2:-1][].price", &doc).unwrap(),
            vec![json!(3)]
        );
        assert_eq!(query(".name[1:3]", &doc).unwrap(), vec![json!("ho")]);
        assert_eq!(query(".items[5:9]", &doc).unwrap(), vec![json!([])]);
    }

    #[test]
    fn iteration() {
        let doc = document();
        assert_eq!(
            query(".items[].name", &doc).unwrap(),
            vec![json!("apple"), json!("bread"), json!("cheese")]
        );
        assert_eq!(
            query(".items[].tags[]", &doc).unwrap_err(),
            PathError("cannot iterate over null".into())
        );
        assert_eq!(
            query(".items[].tags[]?", &doc).unwrap(),
            vec![json!("fruit"), json!("red")]
        );
        assert_eq!(
            query(".owner[]", &doc).unwrap(),
            vec![json!("Ada"), json!(36)]
        );
    }

    #[test]
    fn type_errors_and_optional() {
        let doc = document();
        assert_eq!(
            query(".name.first", &doc).unwrap_err(),
            PathError("cannot index string with \"first\"".into())
        );
        assert_eq!(query(".name.first?", &doc).unwrap(), Vec::<Value>::new());
        assert_eq!(
            query(".count[0]", &doc).unwrap_err(),
            PathError("cannot index number with number 0".into())
        );
    }

    #[test]
    fn keys_may_contain_hyphens_and_unicode() {
        let doc = json!({"content-type": "json", "größe": 2});
        assert_eq!(query(".content-type", &doc).unwrap(), vec![json!("json")]);
        assert_eq!(query(".größe", &doc).unwrap(), vec![json!(2)]);
    }

    #[test]
    fn parse_errors_say_where() {
        for (path, expected) in [
            (
                "",
                "empty path; use `.` for the whole document at position 1",
            ),
            (
                "items",
                "a path starts with `.`, as in `.items[0].name` at position 1",
            ),
            (".a[", "expected `]` or `:` at position 4"),
            (".a[x]", "expected `]` or `:` at position 4"),
            (".a | length", "pipes and functions are not supported"),
            ("..a", "recursive descent `..` is not supported"),
            (r#".["a"#, "unterminated string"),
            (".a.", "expected a key after `.` at position 4"),
        ] {
            let error = Path::parse(path).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{path}: {error}");
        }
    }
}

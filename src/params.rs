//! Stage parameters: declared specs, typed values and their canonical form.
//!
//! The canonical form is what enters a cache key: one string per parameter, independent of
//! how the user spelled it (`1e-5` and `0.00001` are the same float, `2` for a float
//! parameter is `2.0`), with defaults filled in. Keys of tables are sorted.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    Int,
    Float,
    Bool,
    Str,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A path relative to the pipeline file. Its *content* is hashed and stored, like a
    /// `{ file = … }` input; the path string itself never enters the key.
    Path,
    StrList,
    /// A table of string values (e.g. environment variables).
    StrMap,
}

impl ParamType {
    pub fn describe(&self) -> String {
        match self {
            ParamType::Int => "integer".into(),
            ParamType::Float => "float".into(),
            ParamType::Bool => "bool".into(),
            ParamType::Str => "string".into(),
            ParamType::Enum(v) => v.join("|"),
            ParamType::Path => "path".into(),
            ParamType::StrList => "list of strings".into(),
            ParamType::StrMap => "table of strings".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

impl Value {
    /// The canonical spelling that enters cache keys and that `plan` shows as old → new.
    pub fn canonical(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            // Debug of f64 is the shortest string that round-trips, so every spelling of
            // one number maps to one string; -0.0 is folded into 0.0.
            Value::Float(f) => format!("{:?}", if *f == 0.0 { 0.0 } else { *f }),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => serde_json::to_string(s).expect("string serialises"),
            Value::List(l) => serde_json::to_string(l).expect("list serialises"),
            Value::Map(m) => serde_json::to_string(m).expect("map serialises"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    /// `None` means the parameter is required.
    pub default: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: Option<&'static str>,
    pub doc: &'static str,
}

impl ParamSpec {
    fn new(name: &'static str, ty: ParamType, default: Option<Value>, doc: &'static str) -> Self {
        ParamSpec {
            name,
            ty,
            default,
            min: None,
            max: None,
            unit: None,
            doc,
        }
    }
    pub fn int(name: &'static str, default: i64, doc: &'static str) -> Self {
        Self::new(name, ParamType::Int, Some(Value::Int(default)), doc)
    }
    pub fn float(name: &'static str, default: f64, doc: &'static str) -> Self {
        Self::new(name, ParamType::Float, Some(Value::Float(default)), doc)
    }
    pub fn bool(name: &'static str, default: bool, doc: &'static str) -> Self {
        Self::new(name, ParamType::Bool, Some(Value::Bool(default)), doc)
    }
    pub fn string(name: &'static str, default: &str, doc: &'static str) -> Self {
        Self::new(name, ParamType::Str, Some(Value::Str(default.into())), doc)
    }
    pub fn one_of(
        name: &'static str,
        choices: &'static [&'static str],
        default: &str,
        doc: &'static str,
    ) -> Self {
        Self::new(
            name,
            ParamType::Enum(choices),
            Some(Value::Str(default.into())),
            doc,
        )
    }
    pub fn list(name: &'static str, default: &[&str], doc: &'static str) -> Self {
        let v = default.iter().map(|s| s.to_string()).collect();
        Self::new(name, ParamType::StrList, Some(Value::List(v)), doc)
    }
    pub fn map(name: &'static str, doc: &'static str) -> Self {
        Self::new(
            name,
            ParamType::StrMap,
            Some(Value::Map(BTreeMap::new())),
            doc,
        )
    }
    /// A parameter the user must give.
    pub fn required(name: &'static str, ty: ParamType, doc: &'static str) -> Self {
        Self::new(name, ty, None, doc)
    }
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
    pub fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Checks a value against the declared range, returning a message if it is outside.
    pub fn check_range(&self, v: &Value) -> Result<(), String> {
        let x = match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => return Ok(()),
        };
        if x.is_nan() {
            return Err(format!("`{}` must be a number, not NaN", self.name));
        }
        let unit = self.unit.map(|u| format!(" {u}")).unwrap_or_default();
        match (self.min, self.max) {
            (Some(lo), Some(hi)) if x < lo || x > hi => Err(format!(
                "`{}` = {} is out of range: expected {lo} ..= {hi}{unit}",
                self.name,
                v.canonical()
            )),
            _ => Ok(()),
        }
    }
}

/// A stage's parameters after validation: every declared parameter present, defaults filled.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params(pub BTreeMap<String, Value>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
    fn expect(&self, name: &str) -> &Value {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("parameter `{name}` is not declared by this stage kind"))
    }
    // The getters panic on a type mismatch: the loader has already checked every value
    // against the kind's specs, so a mismatch here is a bug in the kind, not user input.
    pub fn int(&self, name: &str) -> i64 {
        match self.expect(name) {
            Value::Int(i) => *i,
            v => panic!("parameter `{name}` is {v:?}, not an integer"),
        }
    }
    pub fn float(&self, name: &str) -> f64 {
        match self.expect(name) {
            Value::Float(f) => *f,
            Value::Int(i) => *i as f64,
            v => panic!("parameter `{name}` is {v:?}, not a float"),
        }
    }
    pub fn bool(&self, name: &str) -> bool {
        match self.expect(name) {
            Value::Bool(b) => *b,
            v => panic!("parameter `{name}` is {v:?}, not a bool"),
        }
    }
    pub fn str(&self, name: &str) -> &str {
        match self.expect(name) {
            Value::Str(s) => s,
            v => panic!("parameter `{name}` is {v:?}, not a string"),
        }
    }
    pub fn list(&self, name: &str) -> &[String] {
        match self.expect(name) {
            Value::List(l) => l,
            v => panic!("parameter `{name}` is {v:?}, not a list"),
        }
    }
    pub fn map(&self, name: &str) -> &BTreeMap<String, String> {
        match self.expect(name) {
            Value::Map(m) => m,
            v => panic!("parameter `{name}` is {v:?}, not a table"),
        }
    }
    pub fn canonical(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.canonical()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_spellings_share_a_canonical_form() {
        let a: f64 = "1e-5".parse().unwrap();
        let b: f64 = "0.00001".parse().unwrap();
        assert_eq!(Value::Float(a).canonical(), Value::Float(b).canonical());
        assert_eq!(
            Value::Float(-0.0).canonical(),
            Value::Float(0.0).canonical()
        );
        assert_ne!(
            Value::Float(1e-5).canonical(),
            Value::Float(2e-5).canonical()
        );
    }

    #[test]
    fn range_check_names_the_bounds() {
        let s = ParamSpec::float("temperature", 0.7, "").range(0.0, 5.0);
        assert!(s.check_range(&Value::Float(1.0)).is_ok());
        let e = s.check_range(&Value::Float(9.0)).unwrap_err();
        assert!(e.contains("0 ..= 5"), "{e}");
    }
}

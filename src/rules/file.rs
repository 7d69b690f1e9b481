//! The rules file: TOML, read into [`RuleSpec`]s (name, label, condition) before the data is
//! looked at. Every problem is one line naming the rule; [`super::RuleSet::load`] adds the file.
//!
//! ```toml
//! text_column = "text"          # column keywords/regex read unless a condition names another
//!
//! [[rule]]
//! name = "sports_words"
//! label = "Sports"
//! keywords = ["football", "soccer", "NBA"]   # the condition's keys may sit in the rule itself
//!
//! [[rule]]
//! name = "refund_card"
//! label = "card_payment_fee_charged"
//! when.all = [{ keywords = ["refund"] }, { keywords = ["card"] }]
//! ```
//!
//! The condition kinds and their keys are listed on [`CondSpec`].

use serde::Deserialize;

/// Deepest nesting of `all`/`any`/`not` accepted (a guard against stack exhaustion).
pub const MAX_DEPTH: usize = 32;

/// Default column read by `keywords` and `regex` when neither the condition nor the file names one.
pub const DEFAULT_TEXT_COLUMN: &str = "text";

/// One rule as written: it votes `label` on the items where `when` holds and abstains elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Unique name (letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// The class the rule votes for.
    pub label: String,
    /// Where the rule fires.
    pub when: CondSpec,
}

/// A condition as written (columns, ids and classes not yet checked against the data).
#[derive(Debug, Clone, PartialEq)]
pub enum CondSpec {
    /// `keywords = [..]` (any of them occurs) or `regex = ".."` (matches somewhere) on the
    /// string column `column`; keys `column`, `case_sensitive` (default false), and for
    /// keywords `word_boundary` (default true).
    Text {
        /// The string column searched.
        column: String,
        /// The regular expression that decides (keywords are compiled into one, see
        /// [`keywords_pattern`]).
        pattern: String,
        /// Letter case must match.
        case_sensitive: bool,
    },
    /// `column = "c", equals = v` or `column = "c", one_of = [v, ..]`: the cell equals one of
    /// the values (string, number or boolean; a null cell never does).
    Equals {
        /// The column compared.
        column: String,
        /// Accepted values.
        values: Vec<Scalar>,
    },
    /// `column = "c"` with one or more of `gt`, `ge`, `lt`, `le` (numbers): every bound holds.
    Compare {
        /// The numeric column compared.
        column: String,
        /// The bounds, all of which must hold.
        bounds: Vec<(CmpOp, f64)>,
    },
    /// `similar_to = ["id", ..], min_cosine = c`: cosine ≥ c to at least one listed item.
    SimilarTo {
        /// Ids of the example items.
        ids: Vec<String>,
        /// Cosine at or above which the condition holds.
        min_cosine: f32,
    },
    /// `centroid = "class", min_cosine = c`: cosine ≥ c to the mean direction of the class's
    /// labeled items.
    Centroid {
        /// The class whose labeled items make the centroid.
        class: String,
        /// Cosine at or above which the condition holds.
        min_cosine: f32,
    },
    /// `all = [cond, ..]`: every condition holds.
    All(Vec<CondSpec>),
    /// `any = [cond, ..]`: at least one holds.
    Any(Vec<CondSpec>),
    /// `not = cond`: the condition does not hold.
    Not(Box<CondSpec>),
}

/// A literal compared with a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string, equal to a string cell.
    Str(String),
    /// A number, equal to a numeric cell (compared as f64).
    Num(f64),
    /// A boolean, equal to a boolean cell.
    Bool(bool),
}

/// A numeric bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// cell > bound
    Gt,
    /// cell ≥ bound
    Ge,
    /// cell < bound
    Lt,
    /// cell ≤ bound
    Le,
}

impl CmpOp {
    /// Whether `x` satisfies the bound.
    pub fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            CmpOp::Gt => x > bound,
            CmpOp::Ge => x >= bound,
            CmpOp::Lt => x < bound,
            CmpOp::Le => x <= bound,
        }
    }
}

/// The regular expression a keyword list compiles to: the escaped keywords as alternatives, each
/// with `\b` on a side where it starts or ends with a word character when `word_boundary` (so
/// `U.S.` still matches before a space). Case is handled by the caller's flag.
pub fn keywords_pattern(words: &[String], word_boundary: bool) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| {
            let (start, end) = if word_boundary {
                (is_word(w.chars().next()), is_word(w.chars().last()))
            } else {
                (false, false)
            };
            format!(
                "{}{}{}",
                if start { r"\b" } else { "" },
                regex::escape(w),
                if end { r"\b" } else { "" }
            )
        })
        .collect();
    format!("(?:{})", alternatives.join("|"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    text_column: Option<String>,
    #[serde(default)]
    rule: Vec<toml::Table>,
}

/// Parses a rules file's text. Errors are one line: where and what (`line 3: …`, `rule 'x': …`).
pub fn parse(text: &str) -> Result<Vec<RuleSpec>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let text_column = raw
        .text_column
        .unwrap_or_else(|| DEFAULT_TEXT_COLUMN.to_string());
    if raw.rule.is_empty() {
        return Err("no rules: add at least one [[rule]] table".into());
    }
    let mut specs: Vec<RuleSpec> = Vec::with_capacity(raw.rule.len());
    for (i, table) in raw.rule.iter().enumerate() {
        let spec = parse_rule(i, table, &text_column)?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(format!("rule '{}': name used twice", spec.name));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// A TOML error as one line with its line number.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

fn parse_rule(i: usize, table: &toml::Table, text_column: &str) -> Result<RuleSpec, String> {
    let name = match table.get("name") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "rule #{}: name must be a string, got {}",
                i + 1,
                describe(other)
            ))
        }
        None => return Err(format!("rule #{}: missing 'name'", i + 1)),
    };
    let fail = |msg: String| format!("rule '{name}': {msg}");
    check_name(&name).map_err(fail)?;
    let label = match table.get("label") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(toml::Value::String(_)) => return Err(fail("label is empty".into())),
        Some(other) => {
            return Err(fail(format!(
                "label must be a string, got {}",
                describe(other)
            )))
        }
        None => return Err(fail("missing 'label'".into())),
    };
    let mut rest = table.clone();
    rest.remove("name");
    rest.remove("label");
    let when = match rest.remove("when") {
        Some(when) if rest.is_empty() => parse_cond(&when, text_column, 0),
        Some(_) => Err(format!(
            "has both 'when' and condition keys ({}): use one",
            keys(&rest)
        )),
        None if rest.is_empty() => {
            Err("has no condition (e.g. keywords = [..] or when = {..})".into())
        }
        None => parse_table(&rest, text_column, 0),
    }
    .map_err(fail)?;
    Ok(RuleSpec { name, label, when })
}

/// Refuses a rule name that is not letters, digits, `_`, `-` or `.`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || !name.chars().all(ok) {
        return Err("name must be letters, digits, '_', '-' or '.'".into());
    }
    Ok(())
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("string \"{s}\""),
        toml::Value::Integer(i) => format!("integer {i}"),
        toml::Value::Float(f) => format!("float {f}"),
        toml::Value::Boolean(b) => format!("boolean {b}"),
        toml::Value::Datetime(d) => format!("datetime {d}"),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

fn keys(t: &toml::Table) -> String {
    t.keys()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kinds a condition table can be, by their deciding key; comparisons share one kind.
const KINDS: &[&str] = &[
    "keywords",
    "regex",
    "equals",
    "one_of",
    "gt",
    "ge",
    "lt",
    "le",
    "similar_to",
    "centroid",
    "all",
    "any",
    "not",
];

fn parse_cond(v: &toml::Value, text_column: &str, depth: usize) -> Result<CondSpec, String> {
    match v {
        toml::Value::Table(t) => parse_table(t, text_column, depth),
        other => Err(format!(
            "a condition must be a table, got {}",
            describe(other)
        )),
    }
}

fn parse_table(t: &toml::Table, text_column: &str, depth: usize) -> Result<CondSpec, String> {
    if depth > MAX_DEPTH {
        return Err(format!("conditions nest deeper than {MAX_DEPTH} levels"));
    }
    let mut kinds: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| t.contains_key(*k))
        .map(|k| {
            if matches!(k, "gt" | "ge" | "lt" | "le") {
                "gt/ge/lt/le"
            } else {
                k
            }
        })
        .collect();
    kinds.dedup();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "condition {{{}}} has none of keywords, regex, equals, one_of, gt/ge/lt/le, \
                 similar_to, centroid, all, any, not",
                keys(t)
            ))
        }
        many => {
            return Err(format!(
                "condition mixes {}: combine them with all = [..] or any = [..]",
                many.join(" and ")
            ))
        }
    };
    let c = Cond { t, kind };
    match kind {
        "keywords" | "regex" => c.text(text_column),
        "equals" | "one_of" => c.equals(),
        "gt/ge/lt/le" => c.compare(),
        "similar_to" => c.similar_to(),
        "centroid" => c.centroid(),
        _ => c.combination(text_column, depth),
    }
}

/// One condition table of a known kind, with typed accessors whose errors name the key.
struct Cond<'a> {
    t: &'a toml::Table,
    kind: &'a str,
}

impl Cond<'_> {
    fn allow(&self, allowed: &[&str]) -> Result<(), String> {
        for k in self.t.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(format!(
                    "unknown key '{k}' in a {} condition (allowed: {})",
                    self.kind,
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("'{key}' must be a string, got {}", describe(other))),
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.t.get(key) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(format!(
                "'{key}' must be true or false, got {}",
                describe(other)
            )),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, String> {
        match self.t.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(toml::Value::Float(f)) if f.is_finite() => Ok(Some(*f)),
            Some(other) => Err(format!(
                "'{key}' must be a finite number, got {}",
                describe(other)
            )),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        let err = || format!("'{key}' must be a non-empty array of non-empty strings");
        let toml::Value::Array(items) = &self.t[key] else {
            return Err(err());
        };
        let out: Vec<String> = items
            .iter()
            .map(|v| match v {
                toml::Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(err()),
            })
            .collect::<Result<_, _>>()?;
        if out.is_empty() {
            return Err(err());
        }
        Ok(out)
    }

    fn column(&self) -> Result<String, String> {
        self.string("column")?
            .ok_or_else(|| format!("a {} condition needs 'column'", self.kind))
    }

    fn text(&self, text_column: &str) -> Result<CondSpec, String> {
        let column = self
            .string("column")?
            .unwrap_or_else(|| text_column.to_string());
        let case_sensitive = self.boolean("case_sensitive", false)?;
        let pattern = if self.kind == "keywords" {
            self.allow(&["keywords", "column", "case_sensitive", "word_boundary"])?;
            keywords_pattern(
                &self.strings("keywords")?,
                self.boolean("word_boundary", true)?,
            )
        } else {
            self.allow(&["regex", "column", "case_sensitive"])?;
            match self.string("regex")? {
                Some(p) if !p.is_empty() => p,
                _ => return Err("'regex' must be a non-empty string".into()),
            }
        };
        Ok(CondSpec::Text {
            column,
            pattern,
            case_sensitive,
        })
    }

    fn scalar(v: &toml::Value) -> Result<Scalar, String> {
        match v {
            toml::Value::String(s) => Ok(Scalar::Str(s.clone())),
            toml::Value::Integer(i) => Ok(Scalar::Num(*i as f64)),
            toml::Value::Float(f) if f.is_finite() => Ok(Scalar::Num(*f)),
            toml::Value::Boolean(b) => Ok(Scalar::Bool(*b)),
            other => Err(format!(
                "values compared must be strings, numbers or booleans, got {}",
                describe(other)
            )),
        }
    }

    fn equals(&self) -> Result<CondSpec, String> {
        self.allow(&[self.kind, "column"])?;
        let values = match (self.kind, &self.t[self.kind]) {
            ("one_of", toml::Value::Array(items)) if !items.is_empty() => {
                items.iter().map(Cond::scalar).collect::<Result<_, _>>()?
            }
            ("one_of", _) => return Err("'one_of' must be a non-empty array".into()),
            (_, v) => vec![Cond::scalar(v)?],
        };
        Ok(CondSpec::Equals {
            column: self.column()?,
            values,
        })
    }

    fn compare(&self) -> Result<CondSpec, String> {
        self.allow(&["column", "gt", "ge", "lt", "le"])?;
        let mut bounds = Vec::new();
        for (key, op) in [
            ("gt", CmpOp::Gt),
            ("ge", CmpOp::Ge),
            ("lt", CmpOp::Lt),
            ("le", CmpOp::Le),
        ] {
            if let Some(x) = self.number(key)? {
                bounds.push((op, x));
            }
        }
        Ok(CondSpec::Compare {
            column: self.column()?,
            bounds,
        })
    }

    fn min_cosine(&self) -> Result<f32, String> {
        match self.number("min_cosine")? {
            Some(c) if (-1.0..=1.0).contains(&c) => Ok(c as f32),
            Some(c) => Err(format!("'min_cosine' must be in [-1, 1], got {c}")),
            None => Err(format!("a {} condition needs 'min_cosine'", self.kind)),
        }
    }

    fn similar_to(&self) -> Result<CondSpec, String> {
        self.allow(&["similar_to", "min_cosine"])?;
        let ids = match &self.t["similar_to"] {
            // Integer ids are written as numbers by users of integer-id pools.
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    _ => Err("'similar_to' must be an array of ids".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err("'similar_to' must be an array of ids".into()),
        };
        if ids.is_empty() {
            return Err("'similar_to' lists no ids".into());
        }
        Ok(CondSpec::SimilarTo {
            ids,
            min_cosine: self.min_cosine()?,
        })
    }

    fn centroid(&self) -> Result<CondSpec, String> {
        self.allow(&["centroid", "min_cosine"])?;
        let class = match self.string("centroid")? {
            Some(c) if !c.is_empty() => c,
            _ => return Err("'centroid' must be a class name".into()),
        };
        Ok(CondSpec::Centroid {
            class,
            min_cosine: self.min_cosine()?,
        })
    }

    fn combination(&self, text_column: &str, depth: usize) -> Result<CondSpec, String> {
        self.allow(&[self.kind])?;
        let v = &self.t[self.kind];
        if self.kind == "not" {
            return Ok(CondSpec::Not(Box::new(parse_cond(
                v,
                text_column,
                depth + 1,
            )?)));
        }
        let toml::Value::Array(items) = v else {
            return Err(format!("'{}' must be an array of conditions", self.kind));
        };
        if items.is_empty() {
            return Err(format!("'{}' lists no conditions", self.kind));
        }
        let parts = items
            .iter()
            .map(|v| parse_cond(v, text_column, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if self.kind == "all" {
            CondSpec::All(parts)
        } else {
            CondSpec::Any(parts)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_rules_in_the_rule_or_under_when() {
        let specs = parse(
            r#"
            [[rule]]
            name = "a"
            label = "Sports"
            keywords = ["goal", "U.S."]

            [[rule]]
            name = "b"
            label = "X"
            when.all = [{ keywords = ["refund"] }, { not = { column = "src", equals = "x" } }]
            "#,
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            specs[0].when,
            CondSpec::Text {
                column: "text".into(),
                pattern: r"(?:\bgoal\b|\bU\.S\.)".into(),
                case_sensitive: false
            }
        );
        let CondSpec::All(parts) = &specs[1].when else {
            panic!("{:?}", specs[1].when)
        };
        assert!(matches!(parts[1], CondSpec::Not(_)));
    }

    #[test]
    fn comparisons_ranges_and_cosines() {
        let specs = parse(
            r#"
            text_column = "body"
            [[rule]]
            name = "r"
            label = "L"
            when.any = [
              { column = "year", ge = 2000, lt = 2010.5 },
              { similar_to = ["a", 7], min_cosine = 0.9 },
              { centroid = "L", min_cosine = 0.5 },
              { regex = "x+", case_sensitive = true },
            ]
            "#,
        )
        .unwrap();
        let CondSpec::Any(parts) = &specs[0].when else {
            panic!()
        };
        assert_eq!(
            parts[0],
            CondSpec::Compare {
                column: "year".into(),
                bounds: vec![(CmpOp::Ge, 2000.0), (CmpOp::Lt, 2010.5)]
            }
        );
        assert!(
            matches!(&parts[1], CondSpec::SimilarTo { ids, .. } if ids == &["a".to_string(), "7".into()])
        );
        assert!(matches!(&parts[3], CondSpec::Text { column, .. } if column == "body"));
    }

    #[test]
    fn problems_are_one_line_naming_the_rule() {
        let cases = [
            ("[[rule]]\nname = \"a\"\nlabel = 3\nkeywords = [\"x\"]", "rule 'a': label must be a string, got integer 3"),
            ("[[rule]]\nname = \"a\"\nlabel = \"L\"", "rule 'a': has no condition"),
            ("[[rule]]\nname = \"a\"\nlabel = \"L\"\nkeywords = []", "rule 'a': 'keywords' must be a non-empty array"),
            ("[[rule]]\nname = \"a\"\nlabel = \"L\"\nkeywords = [\"x\"]\nregex = \"y\"", "rule 'a': condition mixes keywords and regex"),
            ("[[rule]]\nname = \"a\"\nlabel = \"L\"\nkeywords = [\"x\"]\ncolour = 1", "rule 'a': unknown key 'colour'"),
            ("[[rule]]\nname = \"a\"\nlabel = \"L\"\ncentroid = \"L\"\nmin_cosine = 2", "'min_cosine' must be in [-1, 1]"),
            ("[[rule]]\nname = \"a b\"\nlabel = \"L\"\nkeywords = [\"x\"]", "rule 'a b': name must be"),
            ("[[rule]]\nlabel = \"L\"", "rule #1: missing 'name'"),
            ("[[rule]]\nname = \"a\"\nlabel = \"L\"\nkeywords = [\"x\"]\n[[rule]]\nname = \"a\"\nlabel = \"L\"\nkeywords = [\"y\"]", "rule 'a': name used twice"),
            ("rules = 3", "line 1: unknown field `rules`"),
            ("[[rule]\nname=", "line 1:"),
            ("", "no rules"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: wants {want:?}, got {e:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut cond = "{ keywords = [\"x\"] }".to_string();
        for _ in 0..40 {
            cond = format!("{{ not = {cond} }}");
        }
        let text = format!("[[rule]]\nname = \"a\"\nlabel = \"L\"\nwhen = {cond}");
        let e = parse(&text).unwrap_err();
        assert!(e.contains("nest deeper") || e.contains("line"), "{e}");
    }

    #[test]
    fn keyword_boundaries_only_on_word_sides() {
        let p = keywords_pattern(&["$5".into(), "a+b".into(), "c".into()], true);
        assert_eq!(p, r"(?:\$5\b|\ba\+b\b|\bc\b)");
        assert_eq!(keywords_pattern(&["c".into()], false), "(?:c)");
    }
}

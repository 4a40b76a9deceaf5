//! The text-level side of values templates: finding tags, enforcing the sandbox's syntax rules, and
//! checking that a template is valid YAML with its `{{ … }}` expressions neutralised.
//!
//! minijinja bounds instructions (fuel) and recursion but not the size of intermediate strings,
//! so the sandbox also refuses the constructs that can build strings faster than fuel is spent:
//! the string-growing operators `~`, `+` and `*`, and every statement except `if`, `for` and
//! inline `set` (no macros, calls, filter blocks, block-sets, includes or recursive loops). Filters
//! are Fleetplane's own and count their output against a budget (see `render`).

use serde::de::IgnoredAny;
use std::fmt;

/// A template problem, with the 1-based line it is on when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// The line, 1-based.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl TemplateError {
    pub(crate) fn new(line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The kind of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    /// `{{ … }}`
    Expr,
    /// `{% … %}`
    Stmt,
    /// `{# … #}`
    Comment,
}

/// One tag of a template.
#[derive(Debug, Clone)]
pub(crate) struct Tag<'a> {
    pub kind: TagKind,
    /// Byte offset of the opening delimiter.
    pub start: usize,
    /// Byte offset just past the closing delimiter.
    pub end: usize,
    /// The inside, without whitespace-control markers and surrounding spaces.
    pub body: &'a str,
    /// Whether it has a whitespace-control marker (`{{-`, `-}}`, `+`), which removes or keeps
    /// the text's whitespace beside it.
    pub marked: bool,
}

/// The 1-based line of byte offset `at`.
pub(crate) fn line_of(src: &str, at: usize) -> usize {
    src.as_bytes()[..at.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds every tag. Inside `{{ }}` and `{% %}`, quoted strings are skipped, as minijinja's lexer
/// does, so `{{ "}}" }}` is one tag.
///
/// # Errors
/// An unterminated tag or string.
pub(crate) fn scan(src: &str) -> Result<Vec<Tag<'_>>, TemplateError> {
    let b = src.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let start = i;
        let (kind, close) = match b[i + 1] {
            b'{' => (TagKind::Expr, b'}'),
            b'%' => (TagKind::Stmt, b'%'),
            _ => (TagKind::Comment, b'#'),
        };
        let mut j = i + 2;
        let inner_end = loop {
            if j + 1 >= b.len() {
                let what = match kind {
                    TagKind::Expr => "{{",
                    TagKind::Stmt => "{%",
                    TagKind::Comment => "{#",
                };
                return Err(TemplateError::new(
                    Some(line_of(src, start)),
                    format!("unclosed {what}"),
                ));
            }
            let c = b[j];
            if kind != TagKind::Comment && (c == b'"' || c == b'\'') {
                j += 1;
                loop {
                    match b.get(j) {
                        None => {
                            return Err(TemplateError::new(
                                Some(line_of(src, start)),
                                "unterminated string in a tag",
                            ));
                        }
                        Some(b'\\') => j += 2,
                        Some(&q) if q == c => break,
                        Some(_) => j += 1,
                    }
                }
                j += 1;
                continue;
            }
            if c == close && b[j + 1] == b'}' {
                break j;
            }
            j += 1;
        };
        let inner = &src[start + 2..inner_end];
        let mut body = inner;
        if kind != TagKind::Comment {
            body = body.strip_prefix(['-', '+']).unwrap_or(body);
            body = body.strip_suffix(['-', '+']).unwrap_or(body);
        }
        tags.push(Tag {
            kind,
            start,
            end: inner_end + 2,
            body: body.trim(),
            marked: body.len() != inner.len(),
        });
        i = inner_end + 2;
    }
    Ok(tags)
}

/// Statements the sandbox allows.
const ALLOWED_STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor", "set"];

/// Enforces the sandbox's syntax rules on every tag.
///
/// # Errors
/// The first construct the sandbox refuses, with its line.
pub(crate) fn guard(src: &str, tags: &[Tag<'_>]) -> Result<(), TemplateError> {
    for tag in tags {
        if tag.kind == TagKind::Comment {
            continue;
        }
        let line = Some(line_of(src, tag.start));
        if let Some(op) = forbidden_operator(tag.body) {
            return Err(TemplateError::new(
                line,
                format!(
                    "the operator '{op}' is not allowed in values templates (write text and \
                     expressions side by side instead of concatenating)"
                ),
            ));
        }
        if tag.kind == TagKind::Stmt {
            let word: String = tag
                .body
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ALLOWED_STATEMENTS.contains(&word.as_str()) {
                return Err(TemplateError::new(
                    line,
                    format!(
                        "the statement {{% {word} %}} is not allowed in values templates (allowed: \
                         if, elif, else, endif, for, endfor and set x = …)"
                    ),
                ));
            }
            if word == "set" && !is_inline_set(tag.body) {
                return Err(TemplateError::new(
                    line,
                    "only the inline form {% set name = … %} is allowed",
                ));
            }
            if word == "for" && words_outside_strings(tag.body).any(|w| w == "recursive") {
                return Err(TemplateError::new(
                    line,
                    "recursive loops are not allowed in values templates",
                ));
            }
        }
    }
    Ok(())
}

/// The first of `~`, `+`, `*` outside string literals.
fn forbidden_operator(body: &str) -> Option<char> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in body.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if matches!(c, '~' | '+' | '*') => return Some(c),
            None => {}
        }
    }
    None
}

/// The identifier-like words of `body` outside string literals.
fn words_outside_strings(body: &str) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut word = String::new();
    for c in body.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out.into_iter()
}

/// `set a = …`, `set a, b = …` or `set ns.a = …`: a target and a single `=`.
fn is_inline_set(body: &str) -> bool {
    let Some(rest) = body.strip_prefix("set") else {
        return false;
    };
    let Some(eq) = rest.find('=') else {
        return false;
    };
    let target = rest[..eq].trim();
    let after = &rest[eq + 1..];
    !target.is_empty()
        && !after.starts_with('=')
        && target.split(',').all(|t| {
            let t = t.trim();
            !t.is_empty() && t.split('.').all(super::variable::is_identifier)
        })
}

/// The placeholder an expression becomes for the YAML check: a plain scalar valid wherever a
/// scalar may stand, including inside quoted and block scalars.
const PLACEHOLDER: &str = "x";

/// The template with expressions replaced by [`PLACEHOLDER`] and statements and comments removed,
/// plus, for mapping lines back, the neutral line of each removed newline run.
fn neutralize(src: &str, tags: &[Tag<'_>]) -> (String, Vec<(usize, usize)>) {
    let (out, shifts, _) = neutralize_at(src, tags);
    (out, shifts)
}

/// [`neutralize`], plus the byte range each expression's placeholder takes in the result, in
/// the expressions' order.
fn neutralize_at(
    src: &str,
    tags: &[Tag<'_>],
) -> (String, Vec<(usize, usize)>, Vec<std::ops::Range<usize>>) {
    let mut out = String::with_capacity(src.len());
    let mut shifts = Vec::new();
    let mut spots = Vec::new();
    let mut last = 0;
    for tag in tags {
        out.push_str(&src[last..tag.start]);
        let newlines = src[tag.start..tag.end]
            .bytes()
            .filter(|&b| b == b'\n')
            .count();
        if newlines > 0 {
            let neutral_line = out.bytes().filter(|&b| b == b'\n').count() + 1;
            shifts.push((neutral_line, newlines));
        }
        if tag.kind == TagKind::Expr {
            spots.push(out.len()..out.len() + PLACEHOLDER.len());
            out.push_str(PLACEHOLDER);
        }
        last = tag.end;
    }
    out.push_str(&src[last..]);
    (out, shifts, spots)
}

fn yaml_options(strict_keys: bool) -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.with_snippet = false;
    o.duplicate_keys = if strict_keys {
        serde_saphyr::DuplicateKeyPolicy::Error
    } else {
        // Branches of `{% if %}` may legitimately set the same key; the rendered output is
        // checked strictly.
        serde_saphyr::DuplicateKeyPolicy::FirstWins
    };
    o
}

/// Checks that `text` is YAML: one document for values, any number for manifests.
///
/// # Errors
/// The parser's message and line.
pub(crate) fn check_yaml(text: &str, multi: bool, strict_keys: bool) -> Result<(), TemplateError> {
    let result = if multi {
        serde_saphyr::from_multiple_with_options::<IgnoredAny>(text, yaml_options(strict_keys))
            .map(|_| ())
    } else {
        serde_saphyr::from_str_with_options::<Option<IgnoredAny>>(text, yaml_options(strict_keys))
            .map(|_| ())
    };
    result.map_err(|e| {
        let line = e.location().map(|l| l.line() as usize);
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or_default();
        // Drop the parser's own "error: line N column M:" prefix; we report the line ourselves.
        let msg = msg.strip_prefix("error: ").unwrap_or(msg);
        let msg = match msg.split_once(": ") {
            Some((pos, rest)) if pos.starts_with("line ") => rest,
            _ => msg,
        };
        // …and its trailing " at line N, column M".
        let msg = match msg.rsplit_once(" at line ") {
            Some((head, tail)) if tail.contains(", column ") => head,
            _ => msg,
        };
        TemplateError::new(line, format!("not valid YAML: {msg}"))
    })
}

/// Whether the template has statements, whose branches and loops make its output's structure
/// differ from its text's.
pub(crate) fn has_statements(tags: &[Tag<'_>]) -> bool {
    tags.iter().any(|t| t.kind == TagKind::Stmt)
}

/// Where an expression prints, as far as the YAML structure around it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spot {
    /// Anywhere else (or not known): only structurally inert output keeps the structure.
    Other,
    /// Alone as a whole plain scalar in a value position (a mapping's value, a sequence's
    /// entry, a document): any complete single-line double-quoted scalar may stand there.
    Value,
    /// Inside a double-quoted scalar's text: any text without `"`, `\` or line breaks.
    InDoubleQuoted,
    /// Inside a single-quoted scalar's text: any text without `'` or line breaks.
    InSingleQuoted,
}

/// The [`Spot`] of each `{{ … }}` of a statement-free template, in order, so that a render
/// whose output fits every spot need not parse its YAML again (see `render`). Keys are
/// `Other` (two rendered keys could be equal), and so are expressions with an anchor or tag
/// on their scalar or a whitespace-control marker. Any doubt — statements, YAML that does not
/// parse, offsets the parser does not give — answers `Other`.
pub(crate) fn expression_spots(src: &str, tags: &[Tag<'_>]) -> Vec<Spot> {
    use granit_parser::{Event, Parser, ScalarStyle};
    let exprs = tags.iter().filter(|t| t.kind == TagKind::Expr).count();
    let mut out = vec![Spot::Other; exprs];
    if has_statements(tags) {
        return out;
    }
    let (neutral, _, spots) = neutralize_at(src, tags);
    // Whether the next node of each open mapping is a key (`None` for a sequence).
    let mut open: Vec<Option<bool>> = Vec::new();
    for next in Parser::new_from_str(&neutral) {
        let Ok((event, span)) = next else {
            return vec![Spot::Other; exprs];
        };
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(..)
        );
        let is_key = match open.last_mut() {
            Some(Some(key_next)) if is_node => {
                let key = *key_next;
                *key_next = !key;
                key
            }
            _ => false,
        };
        match event {
            Event::Scalar(_, style, 0, None) if !is_key => {
                let (Some(a), Some(b)) = (span.start.byte_offset(), span.end.byte_offset()) else {
                    continue;
                };
                // The placeholders from the scalar's first byte on.
                let first = spots.partition_point(|r| r.start < a);
                match style {
                    ScalarStyle::Plain
                        if spots.get(first).is_some_and(|r| r.start == a && r.end == b) =>
                    {
                        out[first] = Spot::Value;
                    }
                    ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted => {
                        let inside = if style == ScalarStyle::DoubleQuoted {
                            Spot::InDoubleQuoted
                        } else {
                            Spot::InSingleQuoted
                        };
                        // Between the opening quote (at `a`) and the closing one (at `b - 1`).
                        for i in first..spots.len() {
                            if spots[i].start > a && spots[i].end < b {
                                out[i] = inside;
                            } else {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::SequenceStart(..) => open.push(None),
            Event::MappingStart(..) => open.push(Some(true)),
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
            }
            _ => {}
        }
    }
    let exprs = tags.iter().filter(|t| t.kind == TagKind::Expr);
    for (spot, tag) in out.iter_mut().zip(exprs) {
        if tag.marked {
            *spot = Spot::Other;
        }
    }
    out
}

/// Checks a template's YAML structure with its expressions neutralised (see `docs/profiles.md`).
/// Duplicate keys are errors unless statements are present (branches may set the same key).
fn check_yaml_template(src: &str, multi: bool) -> Result<(), TemplateError> {
    let tags = scan(src)?;
    let (neutral, shifts) = neutralize(src, &tags);
    check_yaml(&neutral, multi, !has_statements(&tags)).map_err(|mut e| {
        if let Some(l) = e.line {
            let extra: usize = shifts
                .iter()
                .filter(|(at, _)| *at < l)
                .map(|(_, n)| n)
                .sum();
            e.line = Some(l + extra);
        }
        e
    })
}

/// Checks a values template: a single YAML document once expressions are neutralised.
///
/// # Errors
/// Unclosed tags, or YAML that does not parse, with the line.
pub(crate) fn check_values(src: &str) -> Result<(), TemplateError> {
    check_yaml_template(src, false)
}

/// Checks a manifest template: YAML documents once expressions are neutralised.
///
/// # Errors
/// Unclosed tags, or YAML that does not parse, with the line.
pub(crate) fn check_manifest(src: &str) -> Result<(), TemplateError> {
    check_yaml_template(src, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_tags_with_strings_and_markers() {
        let src = "a: {{ var.x }}\nb: {{- \"}}\" -}}\n{% if x %}\n{# c #}{%+ endif +%}";
        let tags = scan(src).unwrap();
        let bodies: Vec<(TagKind, &str)> = tags.iter().map(|t| (t.kind, t.body)).collect();
        assert_eq!(
            bodies,
            [
                (TagKind::Expr, "var.x"),
                (TagKind::Expr, "\"}}\""),
                (TagKind::Stmt, "if x"),
                (TagKind::Comment, "c"),
                (TagKind::Stmt, "endif"),
            ]
        );
        let marked: Vec<bool> = tags.iter().map(|t| t.marked).collect();
        assert_eq!(marked, [false, true, false, false, true]);
        assert_eq!(scan("a\n{{ x").unwrap_err().line, Some(2));
        assert!(scan("{{ 'x }}").is_err());
        assert!(scan("{# x").is_err());
        assert!(scan("{ x } {").unwrap().is_empty());
    }

    #[test]
    fn sandbox_refuses_growth_and_unbounded_statements() {
        let refused = [
            "{{ a ~ b }}",
            "{{ a + b }}",
            "{{ 'a' * 100000000 }}",
            "{% macro f() %}{% endmacro %}",
            "{% call f() %}{% endcall %}",
            "{% filter upper %}x{% endfilter %}",
            "{% set x %}block{% endset %}",
            "{% include 'x' %}",
            "{% extends 'x' %}",
            "{% import 'x' as y %}",
            "{% for x in y recursive %}{% endfor %}",
            "{% raw %}{% endraw %}",
            "{% with a = 1 %}{% endwith %}",
            "{% autoescape true %}{% endautoescape %}",
        ];
        for src in refused {
            let tags = scan(src).unwrap();
            assert!(guard(src, &tags).is_err(), "{src}");
        }
        let allowed = [
            "{{ var.x | default('a+b~c*d') }}",
            "{% if var.x == 'a' %}y{% elif var.x %}z{% else %}w{% endif %}",
            "{% for c in var.x %}{{ loop.index }}{% endfor %}",
            "{% set a = var.x | upper %}{% set b, c = 1, 2 %}{{ a }}",
            "{{ 10 - 3 }}",
        ];
        for src in allowed {
            let tags = scan(src).unwrap();
            assert!(guard(src, &tags).is_ok(), "{src}");
        }
    }

    #[test]
    fn yaml_is_checked_with_expressions_neutralised() {
        let ok = [
            "",
            "# only a comment\n",
            "replicas: {{ var.replicas }}\nname: \"{{ system.cluster.name }}-x\"\n",
            "{{ var.key }}: value\nlist:\n  - {{ var.a }}\n  - b\n",
            "ca: |\n  {{ var.cert | indent(2) }}\n",
            "{% if var.on == 'true' %}\nmode: a\n{% else %}\nmode: b\n{% endif %}\n",
            "flow: [{{ var.a }}, {{ var.b }}]\n",
        ];
        for src in ok {
            check_values(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        }
        let e = check_values("a: 1\nb: [{{ var.x }}\n").unwrap_err();
        assert!(e.message.starts_with("not valid YAML"), "{e}");
        let e = check_values("a: 1\n  b: {{ var.x }}\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        // A multi-line expression does not shift the reported line.
        let e = check_values("a: {{ var.x\n | upper }}\nb: 1\n c: 2\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(check_values("a: 1\n---\nb: 2\n").is_err());
        check_manifest("kind: A\n---\nkind: B\n").unwrap();
        assert!(check_yaml("a: 1\na: 2\n", false, true).is_err());
        assert!(check_yaml("a: 1\na: 2\n", false, false).is_ok());
        assert!(check_values("a: {{ var.x }}\na: 2\n").is_err());
    }
}

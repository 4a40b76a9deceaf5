//! CEL expressions with cost limits.
//!
//! CEL (the `cel` crate) has no loops besides its comprehension macros over finite lists and maps,
//! and no evaluation cost accounting of its own. The cost is bounded here before an expression
//! runs: by its length ([`MAX_EXPR_LEN`]), its parse depth ([`MAX_DEPTH`]), its number of AST
//! nodes ([`MAX_NODES`]), by forbidding nested comprehensions, and by evaluating it against a
//! context of bounded size (run inputs, variables and step results are capped by the engine).
//! So an expression costs at most about `MAX_NODES × (size of the largest list in the context)`.

use cel::common::ast::{EntryExpr, Expr as Ast};
use cel::parser::Expression;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

/// The longest expression accepted, in bytes.
pub const MAX_EXPR_LEN: usize = 1024;
/// The deepest parse nesting accepted.
pub const MAX_DEPTH: u16 = 24;
/// The most AST nodes (after macro expansion) accepted.
pub const MAX_NODES: usize = 400;

/// The names an expression may start from.
pub const ROOTS: [&str; 7] = [
    "inputs", "vars", "run", "cluster", "steps", "result", "item",
];

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// Why an expression cannot be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression is too long, too deep or too large.
    #[error("expression exceeds a cost limit: {0}")]
    TooCostly(String),
    /// The expression does not parse.
    #[error("expression does not compile: {0}")]
    Syntax(String),
    /// The expression names a variable that does not exist.
    #[error("unknown name {0:?} (expressions may use {roots})", roots = ROOTS.join(", "))]
    UnknownRoot(String),
    /// Evaluation failed (missing key, type mismatch, division by zero…).
    #[error("expression failed: {0}")]
    Eval(String),
    /// The expression's value is not of the expected type.
    #[error("expression returned {got}, expected {want}")]
    Type {
        /// What the expression returned.
        got: String,
        /// What the caller needed.
        want: &'static str,
    },
}

/// Compiled expressions by source, shared by every run: a definition's expressions are
/// evaluated once per run and step (a 10,000-cluster fan-out evaluates the same few sources
/// hundreds of thousands of times). Bounded: emptied when full (sources come from registered
/// definitions, so it refills with the few that are in use).
static COMPILED: LazyLock<std::sync::Mutex<std::collections::HashMap<String, Arc<Compiled>>>> =
    LazyLock::new(Default::default);

/// The most sources kept in [`COMPILED`].
const MAX_COMPILED: usize = 4096;

/// Like [`compile`], from a process-wide table of compiled expressions.
///
/// # Errors
/// As [`compile`] (errors are not kept).
pub fn compile_shared(source: &str) -> Result<Arc<Compiled>, ExprError> {
    let table = || {
        COMPILED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(c) = table().get(source) {
        return Ok(Arc::clone(c));
    }
    let compiled = Arc::new(compile(source)?);
    let mut t = table();
    if t.len() >= MAX_COMPILED {
        t.clear();
    }
    t.insert(source.to_owned(), Arc::clone(&compiled));
    Ok(compiled)
}

/// A compiled, cost-checked CEL expression.
#[derive(Debug)]
pub struct Compiled {
    ast: Expression,
    /// What it reads ([`Compiled::references`]), so that only those names are bound.
    reads: References,
}

/// The names an expression reads, as `root.field` pairs (`inputs.maxFailures`); `field` is
/// empty when the root itself is used whole.
pub type References = BTreeSet<(String, String)>;

/// Compiles `source` and checks its cost.
///
/// # Errors
/// [`ExprError::TooCostly`] over a limit, [`ExprError::Syntax`] when it does not parse,
/// [`ExprError::UnknownRoot`] when it reads a name outside [`ROOTS`].
pub fn compile(source: &str) -> Result<Compiled, ExprError> {
    if source.len() > MAX_EXPR_LEN {
        return Err(ExprError::TooCostly(format!(
            "{} bytes, at most {MAX_EXPR_LEN}",
            source.len()
        )));
    }
    if source.trim().is_empty() {
        return Err(ExprError::Syntax("expression is empty".into()));
    }
    // The parser is third-party and sees user input: a panic in it must not take the engine down.
    let parsed =
        std::panic::catch_unwind(|| ENV.parser().max_recursion_depth(MAX_DEPTH).parse(source));
    let ast = match parsed {
        Ok(Ok(ast)) => ast,
        Ok(Err(e)) => {
            let msg = e.to_string();
            return Err(if msg.contains("Recursion limit") {
                ExprError::TooCostly(format!("nesting deeper than {MAX_DEPTH}"))
            } else {
                ExprError::Syntax(first_line(&msg))
            });
        }
        Err(_) => return Err(ExprError::Syntax("the parser failed on this input".into())),
    };
    let mut walk = Walk::default();
    walk.visit(&ast, 0, &mut Vec::new());
    if walk.nodes > MAX_NODES {
        return Err(ExprError::TooCostly(format!(
            "{} nodes, at most {MAX_NODES}",
            walk.nodes
        )));
    }
    if walk.max_comprehension_depth > 1 {
        return Err(ExprError::TooCostly(
            "nested comprehensions (all/exists/map/filter)".into(),
        ));
    }
    if let Some((root, _)) = walk.refs.iter().find(|(r, _)| !ROOTS.contains(&r.as_str())) {
        return Err(ExprError::UnknownRoot(root.clone()));
    }
    Ok(Compiled {
        ast,
        reads: walk.refs,
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("ERROR: ")
        .to_owned()
}

/// Counts nodes, comprehension nesting and the free names an expression reads.
#[derive(Default)]
struct Walk {
    nodes: usize,
    max_comprehension_depth: usize,
    refs: References,
}

impl Walk {
    fn visit(&mut self, e: &cel::IdedExpr, comp_depth: usize, bound: &mut Vec<String>) {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return;
        }
        match &e.expr {
            Ast::Ident(name) => {
                if !bound.contains(name) {
                    self.refs.insert((name.clone(), String::new()));
                }
            }
            Ast::Select(sel) => {
                if let Ast::Ident(name) = &sel.operand.expr {
                    self.nodes += 1;
                    if !bound.contains(name) {
                        self.refs.insert((name.clone(), sel.field.clone()));
                    }
                } else {
                    self.visit(&sel.operand, comp_depth, bound);
                }
            }
            Ast::Call(call) => {
                if let Some(t) = &call.target {
                    self.visit(t, comp_depth, bound);
                }
                for a in &call.args {
                    self.visit(a, comp_depth, bound);
                }
            }
            Ast::Comprehension(c) => {
                let depth = comp_depth + 1;
                self.max_comprehension_depth = self.max_comprehension_depth.max(depth);
                self.visit(&c.iter_range, comp_depth, bound);
                self.visit(&c.accu_init, comp_depth, bound);
                let mark = bound.len();
                bound.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    bound.push(v.clone());
                }
                bound.push(c.accu_var.clone());
                self.visit(&c.loop_cond, depth, bound);
                self.visit(&c.loop_step, depth, bound);
                self.visit(&c.result, depth, bound);
                bound.truncate(mark);
            }
            Ast::List(l) => {
                for el in &l.elements {
                    self.visit(el, comp_depth, bound);
                }
            }
            Ast::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.visit(&me.key, comp_depth, bound);
                        self.visit(&me.value, comp_depth, bound);
                    }
                }
            }
            Ast::Struct(s) => {
                for entry in &s.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => self.visit(&f.value, comp_depth, bound),
                        EntryExpr::MapEntry(me) => {
                            self.visit(&me.key, comp_depth, bound);
                            self.visit(&me.value, comp_depth, bound);
                        }
                    }
                }
            }
            Ast::Literal(_) | Ast::Unspecified => {}
        }
    }
}

impl Compiled {
    /// The `root.field` names this expression reads (comprehension variables excluded).
    pub fn references(&self) -> References {
        self.reads.clone()
    }

    /// What the expression needs of `root`: `None` when it reads the root whole (or indexes
    /// it), else the fields it reads by name — empty when it does not read the root at all.
    /// A caller building a scope can leave out (or set to null) whatever is not asked for.
    pub fn fields_read(&self, root: &str) -> Option<Vec<&str>> {
        let mut fields = Vec::new();
        for (r, field) in &self.reads {
            if r == root {
                if field.is_empty() {
                    return None;
                }
                fields.push(field.as_str());
            }
        }
        Some(fields)
    }

    /// Whether the expression reads `root` at all (whole or some of its fields).
    pub fn reads(&self, root: &str) -> bool {
        self.fields_read(root).is_none_or(|f| !f.is_empty())
    }

    /// Evaluates against `scope` and returns the value as JSON.
    ///
    /// # Errors
    /// [`ExprError::Eval`] when evaluation fails, [`ExprError::Type`] when the value has no JSON
    /// form (bytes, functions).
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, ExprError> {
        self.eval_prepared(&Prepared::reading(scope, self))
    }

    /// Evaluates against bindings converted once (for many evaluations over one scope, such as
    /// a fan-out's skip rules over every cluster).
    ///
    /// # Errors
    /// As [`Compiled::eval`].
    pub fn eval_prepared(&self, prepared: &Prepared) -> Result<Value, ExprError> {
        let v = cel::Value::resolve(&self.ast, &prepared.ctx)
            .map_err(|e| ExprError::Eval(e.to_string()))?;
        to_json(&v)
    }

    /// Evaluates a predicate.
    ///
    /// # Errors
    /// As [`Compiled::eval`], and [`ExprError::Type`] when the value is not a boolean.
    pub fn eval_bool(&self, scope: &Scope<'_>) -> Result<bool, ExprError> {
        self.eval_bool_prepared(&Prepared::reading(scope, self))
    }

    /// [`Compiled::eval_bool`] over prepared bindings.
    ///
    /// # Errors
    /// As [`Compiled::eval_bool`].
    pub fn eval_bool_prepared(&self, prepared: &Prepared) -> Result<bool, ExprError> {
        match self.eval_prepared(prepared)? {
            Value::Bool(b) => Ok(b),
            other => Err(ExprError::Type {
                got: type_name(&other),
                want: "bool",
            }),
        }
    }
}

/// The JSON type name of a value, for messages.
pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
    .to_owned()
}

/// A [`Scope`] bound into a CEL context once; rebinding one name is cheap. Binding converts
/// values deeply, so evaluating many expressions (a fan-out's skip rules over every cluster)
/// over one `Prepared` avoids converting the inputs again for each.
pub struct Prepared {
    ctx: cel::Context<'static, 'static>,
}

impl Prepared {
    /// Binds every name of `scope`.
    pub fn new(scope: &Scope<'_>) -> Self {
        let mut ctx = cel::Context::with_env(Arc::clone(&ENV));
        for (name, value) in scope.bindings() {
            ctx.add_variable_from_value(name, from_json(value));
        }
        Self { ctx }
    }

    /// Binds the names of `scope` that `expr` reads; the others are null (converting a value
    /// is the costly part of a single evaluation, and the run's step results can be large).
    fn reading(scope: &Scope<'_>, expr: &Compiled) -> Self {
        let mut ctx = cel::Context::with_env(Arc::clone(&ENV));
        for (name, value) in scope.bindings() {
            ctx.add_variable_from_value(
                name,
                if expr.reads(name) {
                    from_json(value)
                } else {
                    cel::Value::Null
                },
            );
        }
        Self { ctx }
    }

    /// Rebinds `name` (one of [`ROOTS`]) to `value`.
    pub fn set(&mut self, name: &str, value: &Value) {
        self.ctx.add_variable_from_value(name, from_json(value));
    }
}

/// JSON to CEL. Whole numbers become `int` (CEL's default integer type) so that arithmetic
/// with literals works (`inputs.maxFailures + 1`); only those beyond `i64` become `uint`.
fn from_json(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(from_json).collect())),
        Value::Object(m) => {
            let map: std::collections::HashMap<cel::objects::Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), from_json(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

fn to_json(v: &cel::Value) -> Result<Value, ExprError> {
    Ok(match v {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        cel::Value::String(s) => Value::String(s.as_str().to_owned()),
        cel::Value::List(l) => Value::Array(l.iter().map(to_json).collect::<Result<_, _>>()?),
        cel::Value::Map(m) => {
            // CEL maps are hash maps: sort the keys so the output is deterministic.
            let mut entries: Vec<(String, Value)> = Vec::with_capacity(m.map.len());
            for (k, v) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.as_str().to_owned(),
                    cel::objects::Key::Int(i) => i.to_string(),
                    cel::objects::Key::Uint(u) => u.to_string(),
                    cel::objects::Key::Bool(b) => b.to_string(),
                };
                entries.push((key, to_json(v)?));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect::<Map<_, _>>())
        }
        other => {
            return Err(ExprError::Type {
                got: format!("{other:?}"),
                want: "a JSON value",
            });
        }
    })
}

/// What an expression can read. Absent parts are bound to `null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The run's inputs, defaults applied.
    pub inputs: Option<&'a Value>,
    /// Run variables set by `set` steps.
    pub vars: Option<&'a Value>,
    /// Run facts: counts, flags, the last caught error.
    pub run: Option<&'a Value>,
    /// The cluster the run (or fan-out item) is about.
    pub cluster: Option<&'a Value>,
    /// Results of completed steps with an `id`, by id.
    pub steps: Option<&'a Value>,
    /// The result of the current provider call (in `poll.until`).
    pub result: Option<&'a Value>,
    /// The fan-out item (in `fanout.skip`), the same as `cluster` there.
    pub item: Option<&'a Value>,
}

impl<'a> Scope<'a> {
    fn bindings(&self) -> [(&'static str, &'a Value); 7] {
        static NULL: Value = Value::Null;
        let or_null = |v: Option<&'a Value>| v.unwrap_or(&NULL);
        [
            ("inputs", or_null(self.inputs)),
            ("vars", or_null(self.vars)),
            ("run", or_null(self.run)),
            ("cluster", or_null(self.cluster)),
            ("steps", or_null(self.steps)),
            ("result", or_null(self.result)),
            ("item", or_null(self.item)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shared_compilations_are_reused_and_errors_are_not_kept() {
        let a = compile_shared("inputs.x + 1").unwrap();
        let b = compile_shared("inputs.x + 1").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(matches!(
            compile_shared("nope.x"),
            Err(ExprError::UnknownRoot(_))
        ));
        assert!(!COMPILED.lock().unwrap().contains_key("nope.x"));
    }

    #[test]
    fn fields_read_say_what_a_scope_needs() {
        let c = compile("steps.render.result.stack.changed && !inputs.upgradeNow").unwrap();
        assert_eq!(c.fields_read("steps"), Some(vec!["render"]));
        assert_eq!(c.fields_read("inputs"), Some(vec!["upgradeNow"]));
        assert_eq!(c.fields_read("vars"), Some(vec![]));
        // Indexing or using a root whole needs all of it.
        assert_eq!(
            compile("steps['render'] != null")
                .unwrap()
                .fields_read("steps"),
            None
        );
        assert_eq!(compile("size(vars) > 0").unwrap().fields_read("vars"), None);
        // What is not read is not bound: an unread root may be anything.
        let steps = json!({"render": {"result": {"stack": {"changed": true}}}});
        let inputs = json!({"upgradeNow": false});
        let huge = json!({"x": [1, 2, 3]});
        let scope = Scope {
            steps: Some(&steps),
            inputs: Some(&inputs),
            vars: Some(&huge),
            ..Scope::default()
        };
        assert_eq!(c.eval(&scope), Ok(json!(true)));
    }

    #[test]
    fn evaluates_the_design_examples() {
        let cluster = json!({"name": "c1", "labels": {"ring": "canary"}});
        let run = json!({"failed": 2});
        let inputs = json!({"maxFailures": 3});
        let scope = Scope {
            cluster: Some(&cluster),
            run: Some(&run),
            inputs: Some(&inputs),
            ..Scope::default()
        };
        let cases = [
            ("cluster.labels.ring == \"canary\"", json!(true)),
            ("run.failed < 3", json!(true)),
            ("inputs.maxFailures", json!(3)),
            ("inputs.maxFailures * 2 + run.failed", json!(8)),
            ("double(run.failed) / 4.0", json!(0.5)),
            (
                "{'b': 1, 'a': [1, 2.5, 'x']}",
                json!({"a": [1, 2.5, "x"], "b": 1}),
            ),
            ("[1, 2, 3].filter(x, x > 1).map(x, x * 2)", json!([4, 6])),
            (
                "has(cluster.labels.ring) && cluster.name.startsWith('c')",
                json!(true),
            ),
        ];
        for (src, want) in cases {
            let c = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(c.eval(&scope), Ok(want), "{src}");
        }
    }

    #[test]
    fn references_exclude_comprehension_variables() {
        let c =
            compile("inputs.waves.all(w, w.name != '') && vars.x > run.failed && cluster").unwrap();
        let refs: Vec<_> = c.references().into_iter().collect();
        assert_eq!(
            refs,
            vec![
                ("cluster".into(), "".into()),
                ("inputs".into(), "waves".into()),
                ("run".into(), "failed".into()),
                ("vars".into(), "x".into()),
            ]
        );
    }

    #[test]
    fn cost_limits_are_enforced() {
        let long = format!("1 + {}", "1 + ".repeat(MAX_EXPR_LEN / 4) + "1");
        assert!(matches!(compile(&long), Err(ExprError::TooCostly(_))));
        let deep = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        assert!(
            matches!(compile(&deep), Err(ExprError::TooCostly(_))),
            "{:?}",
            compile(&deep)
        );
        let nested = "[1].all(x, [2].exists(y, x < y))";
        assert!(matches!(compile(nested), Err(ExprError::TooCostly(_))));
        let wide = (0..300)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(matches!(
            compile(&format!("[{wide}]")),
            Err(ExprError::TooCostly(_))
        ));
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        assert!(matches!(compile("run.failed <"), Err(ExprError::Syntax(_))));
        assert!(matches!(compile(""), Err(ExprError::Syntax(_))));
        assert!(
            matches!(compile("secrets.token"), Err(ExprError::UnknownRoot(r)) if r == "secrets")
        );
        let scope = Scope::default();
        assert!(matches!(
            compile("run.failed").unwrap().eval(&scope),
            Err(ExprError::Eval(_))
        ));
        assert!(matches!(
            compile("1").unwrap().eval_bool(&scope),
            Err(ExprError::Type { want: "bool", .. })
        ));
        assert!(matches!(
            compile("1 / 0").unwrap().eval(&scope),
            Err(ExprError::Eval(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn compile_never_panics(s in "[a-z0-9 .()\\[\\]{}<>=!&|+*/%'\",:?-]{0,64}") {
            if let Ok(c) = compile(&s) {
                let _ = c.eval(&Scope::default());
            }
        }
    }
}

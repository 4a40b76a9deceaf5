//! Static checks of definitions (DESIGN §6.1) and validation of run inputs.
//!
//! Every problem is reported at once, each at the path of the offending field
//! (`spec.steps[2].fanout.steps[0].wait`).

use crate::definition::{
    Definition, InputDecl, InputType, Limit, ListSel, Operation, OrExpr, Purpose, Step, StepKind,
    StepPath, WaitFor,
};
use crate::expr::{self, Compiled};
use fleetplane_domain::error::path;
use fleetplane_domain::meta::validate_name;
use fleetplane_domain::{DomainError, Problems};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The most steps a definition may have, all levels counted.
pub const MAX_STEPS: usize = 500;
/// The deepest nesting of steps.
pub const MAX_NESTING: usize = 12;
/// The most inputs a definition may declare.
pub const MAX_INPUTS: usize = 64;

/// Runs every static check.
///
/// # Errors
/// `ValidationFailed` with every problem, each at its field path.
pub fn check(def: &Definition) -> Result<(), DomainError> {
    let mut p = Problems::new();
    p.check(validate_name("metadata.name", &def.metadata.name));
    if def.metadata.description.chars().count() > 1024 {
        p.push("metadata.description", "must be at most 1024 characters");
    }
    check_inputs(&def.spec.inputs, &mut p);

    let mut index = Index::default();
    collect(&def.spec.steps, None, ListSel::Spec, &mut index, &mut p);
    if index.count > MAX_STEPS {
        p.push(
            "spec.steps",
            format!("{} steps, at most {MAX_STEPS}", index.count),
        );
    }
    if def.spec.steps.is_empty() {
        p.push("spec.steps", "must have at least one step");
    }
    let ctx = Ctx {
        def,
        index: &index,
        in_fanout: false,
    };
    check_list(&ctx, &def.spec.steps, None, ListSel::Spec, &mut p);
    p.finish()
}

/// Names collected in a first pass, so references can be checked in any order.
#[derive(Default)]
struct Index {
    ids: BTreeSet<String>,
    vars: BTreeSet<String>,
    approvals: BTreeSet<String>,
    count: usize,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

fn step_path(parent: Option<&StepPath>, sel: ListSel, i: usize) -> StepPath {
    match parent {
        None => StepPath::root(i),
        Some(p) => p.child(sel, i),
    }
}

fn collect(
    steps: &[Step],
    parent: Option<&StepPath>,
    sel: ListSel,
    ix: &mut Index,
    p: &mut Problems,
) {
    for (i, step) in steps.iter().enumerate() {
        let sp = step_path(parent, sel, i);
        ix.count += 1;
        if sp.depth() > MAX_NESTING {
            p.push(
                sp.to_string(),
                format!("steps nest deeper than {MAX_NESTING} levels"),
            );
            continue;
        }
        if let Some(id) = &step.id {
            if !is_identifier(id) {
                p.push(
                    path(&sp.to_string(), "id"),
                    format!("{id:?} is not an identifier"),
                );
            } else if !ix.ids.insert(id.clone()) {
                p.push(
                    path(&sp.to_string(), "id"),
                    format!("step id {id:?} is used twice"),
                );
            }
        }
        match &step.kind {
            StepKind::Set(s) => {
                ix.vars.insert(s.name.clone());
            }
            StepKind::Approve(a) if !ix.approvals.insert(a.name.clone()) => {
                p.push(
                    path(&sp.to_string(), "approve.name"),
                    format!("approval {:?} is named twice", a.name),
                );
            }
            _ => {}
        }
        for list in child_lists(step) {
            if let Some(children) = step.list(list) {
                collect(children, Some(&sp), list, ix, p);
            }
        }
    }
}

/// The nested lists a step has.
pub(crate) fn child_lists(step: &Step) -> Vec<ListSel> {
    match &step.kind {
        StepKind::Sequence(_) => vec![ListSel::Sequence],
        StepKind::Try(_) => vec![ListSel::Try, ListSel::Catch],
        StepKind::Fanout(_) => vec![ListSel::Fanout],
        StepKind::Choice(c) => {
            let mut v: Vec<ListSel> = (0..c.when.len()).map(|k| ListSel::When(k as u32)).collect();
            v.push(ListSel::Otherwise);
            v
        }
        _ => Vec::new(),
    }
}

struct Ctx<'a> {
    def: &'a Definition,
    index: &'a Index,
    in_fanout: bool,
}

/// Where an expression appears, which decides the names it may read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Site {
    Plain,
    PollUntil,
    Skip,
}

impl Ctx<'_> {
    fn expr(&self, field: &str, source: &str, site: Site, p: &mut Problems) -> Option<Compiled> {
        let compiled = match expr::compile(source) {
            Ok(c) => c,
            Err(e) => {
                p.push(field, e.to_string());
                return None;
            }
        };
        for (root, name) in compiled.references() {
            let problem = match root.as_str() {
                "inputs" if !name.is_empty() && !self.def.spec.inputs.contains_key(&name) => {
                    Some(format!("input {name:?} is not declared in spec.inputs"))
                }
                "vars" if !name.is_empty() && !self.index.vars.contains(&name) => {
                    Some(format!("variable {name:?} is never set by a `set` step"))
                }
                "steps" if !name.is_empty() && !self.index.ids.contains(&name) => {
                    Some(format!("no step has id {name:?}"))
                }
                "result" if site != Site::PollUntil => {
                    Some("`result` can only be read in a provider step's poll.until".into())
                }
                "item" if site != Site::Skip => {
                    Some("`item` can only be read in a fan-out's skip rules".into())
                }
                "cluster"
                    if self.def.spec.purpose == Purpose::Rollout
                        && !self.in_fanout
                        && site != Site::Skip =>
                {
                    Some("`cluster` is only known inside a fan-out in a rollout workflow".into())
                }
                _ => None,
            };
            if let Some(msg) = problem {
                p.push(field, msg);
            }
        }
        Some(compiled)
    }
}

fn check_list(
    ctx: &Ctx<'_>,
    steps: &[Step],
    parent: Option<&StepPath>,
    sel: ListSel,
    p: &mut Problems,
) {
    for (i, step) in steps.iter().enumerate() {
        let sp = step_path(parent, sel, i);
        if sp.depth() > MAX_NESTING {
            continue;
        }
        check_step(ctx, step, &sp, p);
    }
}

fn check_step(ctx: &Ctx<'_>, step: &Step, sp: &StepPath, p: &mut Problems) {
    let at = |field: &str| {
        format!(
            "{sp}.{}{}{field}",
            step.kind.name(),
            if field.is_empty() { "" } else { "." }
        )
    };
    let here = at("");
    match &step.kind {
        StepKind::Provider(s) => {
            if s.operation == Operation::PollOperation {
                p.push(
                    at("operation"),
                    "poll-operation is issued by the engine while a step polls; set `poll` on the \
                     step that starts the operation",
                );
            }
            if let Some(args) = &s.args {
                ctx.expr(&at("args"), args, Site::Plain, p);
            }
            if let Some(poll) = &s.poll {
                if poll.interval.as_millis() == 0 {
                    p.push(at("poll.interval"), "must be greater than 0s");
                }
                if poll.interval > poll.timeout {
                    p.push(at("poll.interval"), "must not exceed poll.timeout");
                }
                if let Some(until) = &poll.until {
                    if !s.operation.is_read_only() {
                        p.push(
                            at("poll.until"),
                            format!(
                                "re-calling {} until a predicate holds would repeat a change; \
                                 `until` is for read-only operations",
                                s.operation.as_str()
                            ),
                        );
                    }
                    ctx.expr(&at("poll.until"), until, Site::PollUntil, p);
                }
            }
            let r = &s.retry;
            if !(1..=100).contains(&r.maximum_attempts) {
                p.push(at("retry.maximumAttempts"), "must be between 1 and 100");
            }
            if !(r.backoff_coefficient.is_finite() && (1.0..=10.0).contains(&r.backoff_coefficient))
            {
                p.push(at("retry.backoffCoefficient"), "must be between 1 and 10");
            }
            if r.maximum_interval < r.initial_interval {
                p.push(
                    at("retry.maximumInterval"),
                    "must not be less than initialInterval",
                );
            }
            if r.maximum_total.is_some_and(|t| t.as_millis() == 0) {
                p.push(at("retry.maximumTotal"), "must be greater than 0s");
            }
        }
        StepKind::Render(_) => {}
        StepKind::Wait(w) => {
            match &w.for_ {
                WaitFor::UntilExpr(e) => {
                    ctx.expr(&at("untilExpr"), e, Site::Plain, p);
                    if w.max_wait.is_none() {
                        p.push(
                            here.clone(),
                            "a wait on a computed instant needs maxWait, so every wait is bounded",
                        );
                    }
                }
                WaitFor::Duration(_) | WaitFor::Until(_) | WaitFor::Window => {}
            }
            if w.max_wait.is_some_and(|m| m.as_millis() == 0) {
                p.push(at("maxWait"), "must be greater than 0s");
            }
        }
        StepKind::Soak(s) => {
            ctx.expr(&at("health"), &s.health, Site::Plain, p);
            if s.check_every.as_millis() == 0 {
                p.push(at("checkEvery"), "must be greater than 0s");
            }
        }
        StepKind::Gate(g) => {
            ctx.expr(&at("condition"), &g.condition, Site::Plain, p);
            if g.interval.as_millis() == 0 {
                p.push(at("interval"), "must be greater than 0s");
            }
        }
        StepKind::Approve(a) => {
            p.check(validate_name(&at("name"), &a.name));
            if a.expires.is_some_and(|e| e.as_millis() == 0) {
                p.push(at("expires"), "must be greater than 0s");
            }
        }
        StepKind::Fanout(f) => {
            if ctx.in_fanout {
                p.push(here.clone(), "a fan-out cannot run inside a fan-out");
            }
            if f.steps.is_empty() {
                p.push(at("steps"), "must have at least one step");
            }
            if let Some(w) = &f.waves {
                match w {
                    OrExpr::Expr(e) => {
                        ctx.expr(&at("waves"), e, Site::Plain, p);
                    }
                    OrExpr::Literal(waves) => {
                        let mut names = BTreeSet::new();
                        for (k, wave) in waves.iter().enumerate() {
                            let field = format!("{}[{k}]", at("waves"));
                            if wave.name.is_empty() {
                                p.push(path(&field, "name"), "is required");
                            } else if !names.insert(wave.name.as_str()) {
                                p.push(
                                    path(&field, "name"),
                                    format!("wave {:?} is named twice", wave.name),
                                );
                            }
                            match &wave.max_concurrency {
                                Some(Limit::Expr(_)) => p.push(
                                    path(&field, "maxConcurrency"),
                                    "a wave's limit is a count or a percentage",
                                ),
                                Some(Limit::Count(0)) => {
                                    p.push(path(&field, "maxConcurrency"), "must be at least 1")
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
            let limit = |name: &str, l: &Option<Limit>, p: &mut Problems| match l {
                Some(Limit::Expr(e)) => {
                    ctx.expr(&at(name), e, Site::Plain, p);
                }
                Some(Limit::Count(0)) if name == "maxConcurrency" => {
                    p.push(at(name), "must be at least 1")
                }
                Some(Limit::Percent(_)) if name == "maxFailures" => {
                    p.push(at(name), "write a percentage as maxFailurePercent")
                }
                Some(Limit::Count(c)) if name == "maxFailurePercent" && *c > 100 => {
                    p.push(at(name), "must be between 0 and 100")
                }
                _ => {}
            };
            limit("maxConcurrency", &f.max_concurrency, p);
            limit("maxFailures", &f.max_failures, p);
            limit("maxFailurePercent", &f.max_failure_percent, p);
            if f.max_failures.is_some() && f.max_failure_percent.is_some() {
                p.push(
                    here.clone(),
                    "set maxFailures or maxFailurePercent, not both",
                );
            }
            if let Some(OrExpr::Expr(e)) = &f.on_failure {
                ctx.expr(&at("onFailure"), e, Site::Plain, p);
            }
            for (k, rule) in f.skip.iter().enumerate() {
                let field = format!("{}[{k}]", at("skip"));
                ctx.expr(&path(&field, "if"), &rule.if_, Site::Skip, p);
                if rule.reason.trim().is_empty() {
                    p.push(path(&field, "reason"), "is required");
                }
            }
            let inner = Ctx {
                def: ctx.def,
                index: ctx.index,
                in_fanout: true,
            };
            check_list(&inner, &f.steps, Some(sp), ListSel::Fanout, p);
            return;
        }
        StepKind::Sequence(s) => {
            if s.steps.is_empty() {
                p.push(at("steps"), "must have at least one step");
            }
        }
        StepKind::Choice(c) => {
            if c.when.is_empty() {
                p.push(at("when"), "must have at least one branch");
            }
            for (k, b) in c.when.iter().enumerate() {
                ctx.expr(&format!("{}[{k}].if", at("when")), &b.if_, Site::Plain, p);
            }
        }
        StepKind::Try(t) => {
            if t.steps.is_empty() {
                p.push(at("steps"), "must have at least one step");
            }
        }
        StepKind::Fail(f) => {
            if f.message.trim().is_empty() {
                p.push(at("message"), "is required");
            }
            if let Some(kind) = &f.kind
                && validate_name("", kind).is_err()
            {
                p.push(at("kind"), "must be lowercase letters, digits and '-'");
            }
        }
        StepKind::Set(s) => {
            if !is_identifier(&s.name) {
                p.push(at("name"), format!("{:?} is not an identifier", s.name));
            }
            ctx.expr(&at("value"), &s.value, Site::Plain, p);
        }
        StepKind::Emit(e) => {
            let valid = !e.type_.is_empty()
                && e.type_.len() <= 128
                && e.type_
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
            if !valid {
                p.push(
                    at("type"),
                    "must be lowercase letters, digits, '.', '-' and '_'",
                );
            }
            if let Some(d) = &e.data {
                ctx.expr(&at("data"), d, Site::Plain, p);
            }
        }
    }
    for list in child_lists(step) {
        if let Some(children) = step.list(list) {
            check_list(ctx, children, Some(sp), list, p);
        }
    }
}

fn check_inputs(inputs: &BTreeMap<String, InputDecl>, p: &mut Problems) {
    if inputs.len() > MAX_INPUTS {
        p.push(
            "spec.inputs",
            format!("{} inputs, at most {MAX_INPUTS}", inputs.len()),
        );
    }
    for (name, decl) in inputs {
        let field = path("spec.inputs", name);
        if !is_identifier(name) {
            p.push(&field, format!("{name:?} is not an identifier"));
        }
        check_decl(&field, decl, p);
    }
}

fn check_decl(field: &str, decl: &InputDecl, p: &mut Problems) {
    if decl.items.is_some() && decl.ty != InputType::Array {
        p.push(path(field, "items"), "only arrays have items");
    }
    if decl.properties.is_some() && decl.ty != InputType::Object {
        p.push(path(field, "properties"), "only objects have properties");
    }
    if (decl.minimum.is_some() || decl.maximum.is_some())
        && !matches!(decl.ty, InputType::Integer | InputType::Number)
    {
        p.push(field, "only numbers have minimum and maximum");
    }
    if decl.required && decl.default.is_some() {
        p.push(path(field, "default"), "a required input has no default");
    }
    if let Some(items) = &decl.items {
        check_decl(&path(field, "items"), items, p);
    }
    for (k, d) in decl.properties.iter().flatten() {
        check_decl(&path(&path(field, "properties"), k), d, p);
    }
    if let Some(values) = &decl.one_of {
        for (i, v) in values.iter().enumerate() {
            let mut q = Problems::new();
            check_value(&format!("{field}.enum[{i}]"), decl, v, &mut q, false);
            p.extend(q.errors().iter().cloned());
        }
    }
    if let Some(d) = &decl.default {
        check_value(&path(field, "default"), decl, d, p, true);
    }
}

fn check_value(field: &str, decl: &InputDecl, v: &Value, p: &mut Problems, check_enum: bool) {
    let type_ok = match decl.ty {
        InputType::String => v.is_string(),
        InputType::Integer => v.is_i64() || v.is_u64(),
        InputType::Number => v.is_number(),
        InputType::Boolean => v.is_boolean(),
        InputType::Array => v.is_array(),
        InputType::Object => v.is_object(),
    };
    if !type_ok {
        let ty = serde_json::to_value(decl.ty)
            .ok()
            .and_then(|t| t.as_str().map(str::to_owned));
        p.push(field, format!("must be of type {}", ty.unwrap_or_default()));
        return;
    }
    if check_enum
        && let Some(values) = &decl.one_of
        && !values.contains(v)
    {
        p.push(field, "must be one of the enum values");
    }
    if let Some(n) = v.as_f64() {
        if decl.minimum.is_some_and(|m| n < m) {
            p.push(
                field,
                format!("must be at least {}", decl.minimum.unwrap_or_default()),
            );
        }
        if decl.maximum.is_some_and(|m| n > m) {
            p.push(
                field,
                format!("must be at most {}", decl.maximum.unwrap_or_default()),
            );
        }
    }
    if let (Some(items), Value::Array(vs)) = (&decl.items, v) {
        for (i, item) in vs.iter().enumerate() {
            check_value(&format!("{field}[{i}]"), items, item, p, true);
        }
    }
    if let (Some(props), Value::Object(m)) = (&decl.properties, v) {
        for (k, item) in m {
            match props.get(k) {
                Some(d) => check_value(&path(field, k), d, item, p, true),
                None => p.push(path(field, k), "is not a declared property"),
            }
        }
        for (k, d) in props {
            if d.required && !m.contains_key(k) {
                p.push(path(field, k), "is required");
            }
        }
    }
}

/// Checks a run's inputs against the definition and returns them with defaults applied (absent
/// optional inputs without a default are `null`).
///
/// # Errors
/// `ValidationFailed` with every problem, at `inputs.<name>` paths.
pub fn validate_inputs(def: &Definition, given: &Value) -> Result<Value, DomainError> {
    let mut p = Problems::new();
    let empty = serde_json::Map::new();
    let given = match given {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            p.push("inputs", "must be an object");
            p.finish()?;
            return Ok(Value::Null);
        }
    };
    let mut out = serde_json::Map::new();
    for k in given.keys() {
        if !def.spec.inputs.contains_key(k) {
            p.push(path("inputs", k), "is not an input of this workflow");
        }
    }
    for (name, decl) in &def.spec.inputs {
        let field = path("inputs", name);
        match given.get(name).filter(|v| !v.is_null()) {
            Some(v) => {
                check_value(&field, decl, v, &mut p, true);
                out.insert(name.clone(), v.clone());
            }
            None if decl.required => p.push(field, "is required"),
            None => {
                out.insert(name.clone(), decl.default.clone().unwrap_or(Value::Null));
            }
        }
    }
    p.finish()?;
    Ok(Value::Object(out))
}

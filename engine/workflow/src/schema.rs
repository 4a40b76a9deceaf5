//! The JSON Schema of definitions, served at `GET /v1/workflows:schema`.
//!
//! Hand-written (`schema/workflow.schema.json`) rather than generated, so it carries the
//! descriptions and patterns users read; tests keep it true: every built-in and example
//! definition validates against it, and so does every definition's serialized form.

use serde_json::Value;
use std::sync::LazyLock;

/// The schema's source text.
pub const SCHEMA_JSON: &str = include_str!("../schema/workflow.schema.json");

static SCHEMA: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(SCHEMA_JSON).unwrap_or(Value::Null));

/// The JSON Schema (draft 2020-12) of workflow definitions.
pub fn schema() -> &'static Value {
    &SCHEMA
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::STEP_KINDS;

    #[test]
    fn schema_parses_and_names_every_step_kind() {
        let s = schema();
        assert!(s.is_object(), "the embedded schema is not valid JSON");
        let props = &s["$defs"]["step"]["properties"];
        for kind in STEP_KINDS {
            assert!(props.get(kind).is_some(), "schema lacks step kind {kind}");
        }
        assert_eq!(
            s["$defs"]["step"]["oneOf"].as_array().map(Vec::len),
            Some(STEP_KINDS.len())
        );
    }
}

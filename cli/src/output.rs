//! Printing data: tables for people, the API's JSON or YAML for programs. Objects are printed
//! as the server sent them, so fields this CLI does not know yet still appear in JSON and YAML.

use crate::args::OutputFormat;
use anyhow::Context as _;
use serde_json::Value;
use std::fmt::Write as _;

/// One column of a table: a header and how to get the cell from an object.
pub struct Column {
    /// The header, in capitals.
    pub header: &'static str,
    /// The cell of an object.
    pub cell: fn(&Value) -> String,
}

impl Column {
    /// A column.
    pub const fn new(header: &'static str, cell: fn(&Value) -> String) -> Self {
        Self { header, cell }
    }
}

/// The value at a JSON pointer (`/metadata/name`) as text: strings as they are, `null` and
/// absent as empty, other values as compact JSON.
pub fn field(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A timestamp at a JSON pointer, to the second (`2025-01-02T03:04:05Z`): tables need no
/// nanoseconds; JSON and YAML keep them.
pub fn time(value: &Value, pointer: &str) -> String {
    let t = field(value, pointer);
    match (t.find('.'), t.strip_suffix('Z')) {
        // `YYYY-MM-DDTHH:MM:SS` is 19 characters.
        (Some(19), Some(_)) if t[20..t.len() - 1].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}Z", &t[..19])
        }
        _ => t,
    }
}

/// Labels as `k=v,k2=v2`.
pub fn labels(value: &Value) -> String {
    match value.pointer("/metadata/labels") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// A list of objects in the format asked: a table with a header, or `{"items": [...]}`.
///
/// # Errors
/// The data cannot be encoded.
pub fn render_list(
    format: OutputFormat,
    items: &[Value],
    columns: &[Column],
) -> anyhow::Result<String> {
    match format {
        OutputFormat::Table => Ok(table(items, columns)),
        _ => render_value(format, &serde_json::json!({ "items": items })),
    }
}

/// One object in the format asked; as a table, one row under a header.
///
/// # Errors
/// The data cannot be encoded.
pub fn render_one(
    format: OutputFormat,
    item: &Value,
    columns: &[Column],
) -> anyhow::Result<String> {
    match format {
        OutputFormat::Table => Ok(table(std::slice::from_ref(item), columns)),
        _ => render_value(format, item),
    }
}

/// Any value as JSON (pretty, ending with a newline) or YAML. A table has no meaning for an
/// arbitrary value; it prints as JSON.
///
/// # Errors
/// The data cannot be encoded.
pub fn render_value(format: OutputFormat, value: &Value) -> anyhow::Result<String> {
    match format {
        OutputFormat::Yaml => serde_saphyr::to_string(value).context("cannot encode YAML"),
        OutputFormat::Json | OutputFormat::Table => {
            let mut s = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
            s.push('\n');
            Ok(s)
        }
    }
}

/// Aligned columns separated by three spaces; the last column is not padded. Control
/// characters in cells become spaces so a value cannot break the layout or the terminal.
pub fn table(items: &[Value], columns: &[Column]) -> String {
    let clean = |s: String| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| clean((c.cell)(item))).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.header.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headers: Vec<String> = columns.iter().map(|c| c.header.to_owned()).collect();
    for row in std::iter::once(&headers).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}   ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLUMNS: &[Column] = &[
        Column::new("NAME", |v| field(v, "/metadata/name")),
        Column::new("DISPLAY NAME", |v| field(v, "/spec/displayName")),
        Column::new("LABELS", labels),
    ];

    fn items() -> Vec<Value> {
        vec![
            json!({"metadata": {"name": "default", "labels": {}}, "spec": {}}),
            json!({"metadata": {"name": "web", "labels": {"env": "prod", "team": "a"}},
                   "spec": {"displayName": "Web\nshop"}}),
        ]
    }

    #[test]
    fn tables_align_and_sanitize() {
        let t = render_list(OutputFormat::Table, &items(), COLUMNS).unwrap();
        assert_eq!(
            t,
            "NAME      DISPLAY NAME   LABELS\n\
             default\n\
             web       Web shop       env=prod,team=a\n"
        );
        assert_eq!(table(&[], COLUMNS), "NAME   DISPLAY NAME   LABELS\n");
    }

    #[test]
    fn json_and_yaml_keep_the_server_objects() {
        let j = render_list(OutputFormat::Json, &items(), COLUMNS).unwrap();
        let back: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back, json!({"items": items()}));
        let y = render_one(OutputFormat::Yaml, &items()[1], COLUMNS).unwrap();
        let back: Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(back, items()[1]);
        assert!(y.contains("name: web"), "{y}");
    }

    #[test]
    fn times_lose_their_fraction_only() {
        let cases = [
            ("2026-11-21T11:31:49.739301291Z", "2026-11-21T11:31:49Z"),
            ("2026-11-21T11:31:49Z", "2026-11-21T11:31:49Z"),
            ("2026-11-21T11:31:49.5+01:00", "2026-11-21T11:31:49.5+01:00"),
            ("v1.2Z", "v1.2Z"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(time(&json!({"t": raw}), "/t"), want, "{raw}");
        }
    }

    #[test]
    fn fields_render_every_json_type() {
        let v = json!({"s": "x", "n": 3, "b": true, "a": [1], "z": null});
        let cases = [
            ("/s", "x"),
            ("/n", "3"),
            ("/b", "true"),
            ("/a", "[1]"),
            ("/z", ""),
            ("/missing", ""),
        ];
        for (p, want) in cases {
            assert_eq!(field(&v, p), want, "{p}");
        }
    }
}

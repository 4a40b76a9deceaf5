//! How a document compares with the object the server has, without I/O.
//!
//! The server fills defaults the file may leave out (`variables: []`, `approvers: {}`, status),
//! so the comparison looks only at what the file sets: [`overlay`] lays the file's document over
//! the server's and the object is unchanged when that changes nothing. Rules:
//!
//! - objects: members the file sets are compared, members it leaves out are kept; under the
//!   kind's `exact` members (labels, description, cloud account `config` and `secrets`) a member
//!   the file leaves out counts as removed;
//! - lists: the file's list, in its order; elements pair by `name` when every element of both
//!   lists is an object with a distinct `name`, else by position, and pairs are compared by the
//!   same rules (so a longer, shorter or reordered list is a change);
//! - a value the server masks (`********`) equals any text the file gives (secrets are
//!   write-only: a new secret value alone is not seen; `apply --force` sends it);
//! - numbers compare by value (`4` equals `4.0`); `null` in the file means "not set", and an
//!   empty text, list or map the file adds where the server has nothing is nothing.

use super::kinds::KindSpec;
use serde_json::{Map, Value};

/// What the server shows instead of a write-only value.
pub const MASK: &str = "********";

/// Metadata members the server sets; a document for `apply` leaves them out.
const SERVER_METADATA: [&str; 5] = ["uid", "createdAt", "updatedAt", "resourceVersion", "kind"];

/// The document `apply` takes for `object` (a server answer or a file's document): `kind` set
/// to the kind's document name, `status` and server-set metadata removed, everything else kept
/// (fields this CLI does not know included).
pub fn document(kind: &KindSpec, object: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind.kind.into()));
    if let Value::Object(members) = object {
        for (k, v) in members {
            match k.as_str() {
                "kind" | "status" => {}
                "metadata" => {
                    let mut meta = v.clone();
                    if let Value::Object(m) = &mut meta {
                        for key in SERVER_METADATA {
                            m.shift_remove(key);
                        }
                    }
                    out.insert(k.clone(), meta);
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(out)
}

/// Whether a value is nothing: `null`, empty text, list or map.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The `name` of every element when each is an object with a distinct string `name`.
fn names(list: &[Value]) -> Option<Vec<&str>> {
    let names: Vec<&str> = list
        .iter()
        .map(|v| v.get("name").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    (sorted.len() == names.len()).then_some(names)
}

/// `live` with `desired` laid over it by the rules of the module; `exact` are JSON pointers of
/// members compared exactly (from the document root). Used for both the comparison
/// (`overlay(live, desired) == live`) and what `diff` shows.
pub fn overlay(live: &Value, desired: &Value, exact: &[&str]) -> Value {
    overlay_at(live, desired, exact, "")
}

fn overlay_at(live: &Value, desired: &Value, exact: &[&str], at: &str) -> Value {
    match (live, desired) {
        (_, Value::Null) => live.clone(),
        (Value::String(l), Value::String(_)) if l == MASK => live.clone(),
        (Value::Number(l), Value::Number(d)) if l.as_f64() == d.as_f64() => live.clone(),
        (Value::Object(l), Value::Object(d)) => {
            let whole = exact.contains(&at);
            let mut out = Map::new();
            for (k, lv) in l {
                let here = format!("{at}/{}", escape(k));
                match d.get(k) {
                    Some(dv) => {
                        out.insert(k.clone(), overlay_at(lv, dv, exact, &here));
                    }
                    None if (whole || exact.contains(&here.as_str())) && !is_empty(lv) => {}
                    None => {
                        out.insert(k.clone(), lv.clone());
                    }
                }
            }
            for (k, dv) in d {
                if !l.contains_key(k) && !is_empty(dv) {
                    out.insert(k.clone(), dv.clone());
                }
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(d)) => {
            let paired: Vec<Value> = match (names(l), names(d)) {
                (Some(ln), Some(dn)) => d
                    .iter()
                    .zip(&dn)
                    .map(|(dv, name)| match ln.iter().position(|n| n == name) {
                        Some(i) => overlay_at(&l[i], dv, exact, &format!("{at}/{i}")),
                        None => dv.clone(),
                    })
                    .collect(),
                _ => d
                    .iter()
                    .enumerate()
                    .map(|(i, dv)| match l.get(i) {
                        Some(lv) => overlay_at(lv, dv, exact, &format!("{at}/{i}")),
                        None => dv.clone(),
                    })
                    .collect(),
            };
            Value::Array(paired)
        }
        _ => desired.clone(),
    }
}

/// A member name as a JSON pointer token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether applying `desired` would change the server's `live` document.
pub fn differs(live: &Value, desired: &Value, exact: &[&str]) -> bool {
    &overlay(live, desired, exact) != live
}

/// A unified diff of two texts (three lines of context), empty when they are equal.
pub fn unified(before: &str, after: &str, from: &str, to: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXACT: &[&str] = &["/metadata/labels", "/metadata/description", "/spec/secrets"];

    fn live() -> Value {
        json!({
            "kind": "CloudAccount",
            "metadata": {"name": "sim", "project": "p", "labels": {"env": "dev"},
                         "description": "d"},
            "spec": {"provider": "simulator", "config": {"timeScale": 0.1},
                     "simulator": {"timeScale": 0.1}, "secrets": {"token": MASK},
                     "steps": [{"set": {"name": "x"}, "approvers": {}}],
                     "schedules": [{"name": "a", "cron": "0 0 * * 0", "durationHours": 4},
                                   {"name": "b", "cron": "0 1 * * 0", "durationHours": 2}]}
        })
    }

    /// The file's view of `live()`: no defaults, numbers and secrets as a person writes them.
    fn file() -> Value {
        json!({
            "kind": "CloudAccount",
            "metadata": {"name": "sim", "labels": {"env": "dev"}, "description": "d"},
            "spec": {"provider": "simulator", "config": {"timeScale": 0.1},
                     "secrets": {"token": "abc"}, "steps": [{"set": {"name": "x"}}],
                     "schedules": [{"name": "a", "cron": "0 0 * * 0", "durationHours": 4.0},
                                   {"name": "b", "cron": "0 1 * * 0", "durationHours": 2}]}
        })
    }

    /// `file()` with `f` applied.
    fn edit(f: impl FnOnce(&mut Value)) -> Value {
        let mut v = file();
        f(&mut v);
        v
    }

    #[test]
    fn what_the_file_sets_is_compared() {
        let cases: Vec<(&str, Value, bool)> = vec![
            ("same", file(), true),
            ("live itself", live(), true),
            (
                "server defaults left out",
                edit(|v| v["spec"]["steps"] = json!([{"set": {"name": "x"}}])),
                true,
            ),
            (
                "null means unset",
                edit(|v| v["spec"]["simulator"] = Value::Null),
                true,
            ),
            (
                "empty where nothing is",
                edit(|v| v["spec"]["cloudTypes"] = json!([])),
                true,
            ),
            (
                "new secret value (masked)",
                edit(|v| v["spec"]["secrets"]["token"] = json!("xyz")),
                true,
            ),
            (
                "secret mask given back",
                edit(|v| v["spec"]["secrets"]["token"] = json!(MASK)),
                true,
            ),
            (
                "labels absent, live has some",
                edit(|v| {
                    v["metadata"].as_object_mut().unwrap().remove("labels");
                }),
                false,
            ),
            (
                "description absent",
                edit(|v| {
                    v["metadata"].as_object_mut().unwrap().remove("description");
                }),
                false,
            ),
            (
                "label removed",
                edit(|v| v["metadata"]["labels"] = json!({})),
                false,
            ),
            (
                "label added",
                edit(|v| v["metadata"]["labels"]["team"] = json!("a")),
                false,
            ),
            (
                "secret removed",
                edit(|v| v["spec"]["secrets"] = json!({})),
                false,
            ),
            (
                "secret added",
                edit(|v| v["spec"]["secrets"]["other"] = json!("x")),
                false,
            ),
            (
                "config key added",
                edit(|v| v["spec"]["config"]["region"] = json!("r")),
                false,
            ),
            (
                "number changed",
                edit(|v| v["spec"]["config"]["timeScale"] = json!(0.5)),
                false,
            ),
            (
                "type changed",
                edit(|v| v["spec"]["config"]["timeScale"] = json!("0.1")),
                false,
            ),
            (
                "schedule removed",
                edit(|v| {
                    v["spec"]["schedules"].as_array_mut().unwrap().pop();
                }),
                false,
            ),
            (
                "schedules reordered",
                edit(|v| v["spec"]["schedules"].as_array_mut().unwrap().reverse()),
                false,
            ),
            (
                "step changed",
                edit(|v| v["spec"]["steps"][0]["set"]["name"] = json!("y")),
                false,
            ),
            (
                "unknown member",
                edit(|v| v["spec"]["nmae"] = json!("x")),
                false,
            ),
        ];
        for (what, desired, unchanged) in cases {
            assert_eq!(!differs(&live(), &desired, EXACT), unchanged, "{what}");
        }
    }

    #[test]
    fn overlays_show_the_change_only() {
        let desired = edit(|v| {
            v["spec"]["schedules"][1]["durationHours"] = json!(3);
            v["metadata"]["labels"] = json!({"team": "a"});
        });
        let got = overlay(&live(), &desired, EXACT);
        let mut want = live();
        want["spec"]["schedules"][1]["durationHours"] = json!(3);
        want["metadata"]["labels"] = json!({"team": "a"});
        assert_eq!(got, want);
        // A secret stays masked in what `diff` shows.
        assert_eq!(got["spec"]["secrets"]["token"], MASK);
    }

    #[test]
    fn named_lists_pair_by_name() {
        let l = json!([{"name": "a", "x": 1, "d": 0}, {"name": "b", "x": 2, "d": 0}]);
        let d = json!([{"name": "b", "x": 2}, {"name": "a", "x": 1}]);
        assert_eq!(
            overlay(&l, &d, &[]),
            json!([{"name": "b", "x": 2, "d": 0}, {"name": "a", "x": 1, "d": 0}])
        );
        // Duplicate names pair by position.
        let l = json!([{"name": "a", "d": 0}, {"name": "a", "d": 1}]);
        let d = json!([{"name": "a"}, {"name": "a"}]);
        assert_eq!(overlay(&l, &d, &[]), l);
    }

    #[test]
    fn documents_drop_status_and_server_metadata() {
        let answer = json!({
            "kind": "ClusterProfileVersion",
            "metadata": {"name": "aws", "uid": "u", "project": "p", "labels": {},
                         "createdAt": "t", "updatedAt": "t", "resourceVersion": "7"},
            "spec": {"version": "1.0.0"},
            "status": {"locked": false}
        });
        let kind = KindSpec::find("profileversion").unwrap();
        assert_eq!(
            document(kind, &answer),
            json!({"kind": "ProfileVersion",
                   "metadata": {"name": "aws", "project": "p", "labels": {}},
                   "spec": {"version": "1.0.0"}})
        );
    }

    #[test]
    fn unified_diffs_name_both_sides() {
        assert_eq!(unified("a\n", "a\n", "x", "y"), "");
        let d = unified("a\nb\n", "a\nc\n", "server", "file");
        assert_eq!(d, "--- server\n+++ file\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
    }
}

//! The OpenAPI 3.1 description served at `/openapi.json`.
//!
//! It is written here, apart from the router, on purpose: a test compares it with the routes the
//! router registers, so a route added without documentation (or documentation of a route that
//! does not exist) fails the build.

use serde_json::{Value, json};

/// One documented operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    body: Option<&'static str>,
    auth: bool,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Op {
    Op {
        method,
        path,
        summary,
        tag,
        body: None,
        auth: true,
    }
}

const fn with_body(mut o: Op, schema: &'static str) -> Op {
    o.body = Some(schema);
    o
}

const fn public(mut o: Op) -> Op {
    o.auth = false;
    o
}

const OPERATIONS: &[Op] = &[
    public(op(
        "get",
        "/healthz",
        "meta",
        "Liveness: the process serves HTTP",
    )),
    public(op(
        "get",
        "/readyz",
        "meta",
        "Readiness: the store is open and the bootstrap done",
    )),
    public(op("get", "/metrics", "meta", "Prometheus metrics")),
    public(op("get", "/openapi.json", "meta", "This document")),
    op(
        "get",
        "/v1/whoami",
        "identity",
        "The caller, its role grants and permissions",
    ),
    op(
        "get",
        "/v1/projects",
        "identity",
        "List projects the caller can see",
    ),
    op("get", "/v1/projects/{name}", "identity", "Get a project"),
    with_body(
        op(
            "put",
            "/v1/projects/{name}",
            "identity",
            "Create or replace a project",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{name}",
        "identity",
        "Delete an empty project",
    ),
    op("get", "/v1/users", "identity", "List users"),
    op("get", "/v1/users/{name}", "identity", "Get a user"),
    with_body(
        op(
            "put",
            "/v1/users/{name}",
            "identity",
            "Create or replace a user (password is write-only)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/users/{name}",
        "identity",
        "Delete a user with its keys and role bindings",
    ),
    op(
        "get",
        "/v1/users/{user}/api-keys",
        "identity",
        "List a user's API keys",
    ),
    with_body(
        op(
            "post",
            "/v1/users/{user}/api-keys",
            "identity",
            "Create an API key (shown once)",
        ),
        "NewApiKey",
    ),
    op(
        "delete",
        "/v1/users/{user}/api-keys/{id}",
        "identity",
        "Revoke an API key",
    ),
    op("get", "/v1/role-bindings", "identity", "List role bindings"),
    op(
        "get",
        "/v1/role-bindings/{name}",
        "identity",
        "Get a role binding",
    ),
    with_body(
        op(
            "put",
            "/v1/role-bindings/{name}",
            "identity",
            "Create or replace a role binding",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/role-bindings/{name}",
        "identity",
        "Delete a role binding",
    ),
    op(
        "get",
        "/v1/maintenance-policies",
        "policies",
        "List tenant maintenance policies",
    ),
    op(
        "get",
        "/v1/maintenance-policies/{name}",
        "policies",
        "Get a maintenance policy with its next windows",
    ),
    with_body(
        op(
            "put",
            "/v1/maintenance-policies/{name}",
            "policies",
            "Create or replace a maintenance policy",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/maintenance-policies/{name}",
        "policies",
        "Delete a policy no template links",
    ),
    op(
        "get",
        "/v1/maintenance-policies/{name}/windows",
        "policies",
        "Next windows in a time zone",
    ),
    op(
        "get",
        "/v1/projects/{project}/maintenance-policies",
        "policies",
        "List project maintenance policies",
    ),
    op(
        "get",
        "/v1/projects/{project}/maintenance-policies/{name}",
        "policies",
        "Get a project maintenance policy",
    ),
    with_body(
        op(
            "put",
            "/v1/projects/{project}/maintenance-policies/{name}",
            "policies",
            "Create or replace a project maintenance policy",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{project}/maintenance-policies/{name}",
        "policies",
        "Delete a project policy no template links",
    ),
    op(
        "get",
        "/v1/projects/{project}/maintenance-policies/{name}/windows",
        "policies",
        "Next windows of a project policy in a time zone",
    ),
    op(
        "get",
        "/v1/maintenance-policies:presets",
        "policies",
        "Ready-made schedules",
    ),
    op(
        "get",
        "/v1/audit-events",
        "audit",
        "List audit entries, newest first",
    ),
    op(
        "get",
        "/v1/events",
        "audit",
        "Server-Sent Events of changes (CloudEvents JSON)",
    ),
];

/// Every documented (method, path), upper-case methods.
pub fn documented_operations() -> Vec<(String, String)> {
    OPERATIONS
        .iter()
        .map(|o| (o.method.to_ascii_uppercase(), o.path.to_owned()))
        .collect()
}

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        let mut operation = json!({
            "summary": o.summary,
            "tags": [o.tag],
            "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}', '.', '-'], "_")),
            "parameters": parameters(o.path),
            "responses": {
                "default": {"description": "An error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "200": {"description": "Success", "content": {"application/json": {}}},
            },
        });
        if let Some(schema) = o.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
            });
        }
        if !o.auth {
            operation["security"] = json!([]);
        }
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Fleetplane API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key (`fpk_…`)"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "code"],
                    "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"},
                        "status": {"type": "integer"}, "detail": {"type": "string"},
                        "code": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
                    },
                },
                "Object": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "kind": {"type": "string"},
                        "metadata": {"type": "object", "properties": {
                            "name": {"type": "string"}, "uid": {"type": "string"}, "project": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "description": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
                            "updatedAt": {"type": "string", "format": "date-time"}, "resourceVersion": {"type": "string"},
                        }},
                        "spec": {"type": "object"},
                        "status": {"type": "object"},
                    },
                },
                "NewApiKey": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "expiresInDays": {"type": "integer", "minimum": 1, "maximum": 3650}},
                },
            },
        },
    })
}

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
        "Liveness: the process serves HTTP and its database accepts writes (503 after an I/O error only a restart recovers from)",
    )),
    public(op(
        "get",
        "/readyz",
        "meta",
        "Readiness: the store is open, writable and the bootstrap done",
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
        "/v1/cluster-templates",
        "templates",
        "List tenant cluster templates with status",
    ),
    op(
        "get",
        "/v1/cluster-templates/{name}",
        "templates",
        "Get a cluster template with its status",
    ),
    with_body(
        op(
            "put",
            "/v1/cluster-templates/{name}",
            "templates",
            "Create or replace a cluster template",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/cluster-templates/{name}",
        "templates",
        "Delete a cluster template without clusters",
    ),
    op(
        "get",
        "/v1/cluster-templates/{name}/variables",
        "templates",
        "Variable values of the template's clusters",
    ),
    with_body(
        op(
            "patch",
            "/v1/cluster-templates/{name}/variables",
            "templates",
            "Assign variable values to clusters",
        ),
        "VariableAssignments",
    ),
    op(
        "get",
        "/v1/projects/{project}/cluster-templates",
        "templates",
        "List project cluster templates with status",
    ),
    op(
        "get",
        "/v1/projects/{project}/cluster-templates/{name}",
        "templates",
        "Get a cluster template with its status",
    ),
    with_body(
        op(
            "put",
            "/v1/projects/{project}/cluster-templates/{name}",
            "templates",
            "Create or replace a cluster template",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{project}/cluster-templates/{name}",
        "templates",
        "Delete a cluster template without clusters",
    ),
    op(
        "get",
        "/v1/projects/{project}/cluster-templates/{name}/variables",
        "templates",
        "Variable values of the template's clusters",
    ),
    with_body(
        op(
            "patch",
            "/v1/projects/{project}/cluster-templates/{name}/variables",
            "templates",
            "Assign variable values to clusters",
        ),
        "VariableAssignments",
    ),
    op(
        "get",
        "/v1/projects/{project}/clusters",
        "clusters",
        "List clusters with status",
    ),
    op(
        "get",
        "/v1/projects/{project}/clusters/{name}",
        "clusters",
        "Get a cluster: phase, health, applied profiles, revision, nodes, conditions, nextWindow",
    ),
    with_body(
        op(
            "put",
            "/v1/projects/{project}/clusters/{name}",
            "clusters",
            "Create a cluster (starts deploy@1) or replace its spec (changes apply at once through update@1)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{project}/clusters/{name}",
        "clusters",
        "Delete a cluster: 202 and delete@1; the record disappears when the provider is done",
    ),
    with_body(
        op(
            "patch",
            "/v1/projects/{project}/clusters/{name}/variables",
            "clusters",
            "Change the cluster's own variable values; applied at once",
        ),
        "ClusterVariables",
    ),
    op(
        "get",
        "/v1/projects/{project}/clusters/{name}/events",
        "clusters",
        "The cluster's recent events, newest first (?limit=)",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/clusters/{name}:attach",
            "clusters",
            "Attach a running standalone cluster to a template",
        ),
        "ClusterAttach",
    ),
    op(
        "post",
        "/v1/projects/{project}/clusters/{name}:detach",
        "clusters",
        "Detach a cluster from its template; it keeps what it runs",
    ),
    op(
        "get",
        "/v1/cluster-templates/{name}/plan",
        "templates",
        "Plan preview: per cluster its current and target revision, wave, expected start, pending variables, layer changes and whether machines are replaced (?limit=&continue=)",
    ),
    op(
        "get",
        "/v1/cluster-templates/{name}/rollouts",
        "templates",
        "The template's rollouts (queued, current, past), newest first, each with its run's status and counts (?limit=&continue=)",
    ),
    op(
        "get",
        "/v1/cluster-templates/{name}/rollouts/{run}/clusters",
        "templates",
        "One rollout's clusters: those it skipped with the reason, then each child run with its status, start, end and last error (?limit=&continue=)",
    ),
    with_body(
        op(
            "post",
            "/v1/cluster-templates/{name}:upgrade",
            "templates",
            "Upgrade now: all clusters, or `clusters` (202 with the run)",
        ),
        "TemplateAction",
    ),
    with_body(
        op(
            "post",
            "/v1/cluster-templates/{name}:pause",
            "templates",
            "Pause the template's rollout",
        ),
        "TemplateAction",
    ),
    with_body(
        op(
            "post",
            "/v1/cluster-templates/{name}:resume",
            "templates",
            "Resume the template's rollout (failed clusters are retried)",
        ),
        "TemplateAction",
    ),
    with_body(
        op(
            "post",
            "/v1/cluster-templates/{name}:rollback",
            "templates",
            "Roll back to the previous revision, at once, for the clusters that moved",
        ),
        "TemplateAction",
    ),
    op(
        "get",
        "/v1/projects/{project}/cluster-templates/{name}/plan",
        "templates",
        "Plan preview: per cluster its current and target revision, wave, expected start, pending variables, layer changes and whether machines are replaced (?limit=&continue=)",
    ),
    op(
        "get",
        "/v1/projects/{project}/cluster-templates/{name}/rollouts",
        "templates",
        "The template's rollouts (queued, current, past), newest first, each with its run's status and counts (?limit=&continue=)",
    ),
    op(
        "get",
        "/v1/projects/{project}/cluster-templates/{name}/rollouts/{run}/clusters",
        "templates",
        "One rollout's clusters: those it skipped with the reason, then each child run with its status, start, end and last error (?limit=&continue=)",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/cluster-templates/{name}:upgrade",
            "templates",
            "Upgrade now: all clusters, or `clusters` (202 with the run)",
        ),
        "TemplateAction",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/cluster-templates/{name}:pause",
            "templates",
            "Pause the template's rollout",
        ),
        "TemplateAction",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/cluster-templates/{name}:resume",
            "templates",
            "Resume the template's rollout (failed clusters are retried)",
        ),
        "TemplateAction",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/cluster-templates/{name}:rollback",
            "templates",
            "Roll back to the previous revision, at once, for the clusters that moved",
        ),
        "TemplateAction",
    ),
    op(
        "get",
        "/v1/providers",
        "providers",
        "List providers with health",
    ),
    with_body(
        op(
            "post",
            "/v1/providers",
            "providers",
            "Install or upgrade a provider (multipart: manifest, component, digest?)",
        ),
        "ProviderUpload",
    ),
    op("get", "/v1/providers/{name}", "providers", "Get a provider"),
    op(
        "delete",
        "/v1/providers/{name}",
        "providers",
        "Remove a provider no cloud account uses",
    ),
    op(
        "get",
        "/v1/projects/{project}/cloud-accounts",
        "providers",
        "List cloud accounts",
    ),
    op(
        "get",
        "/v1/projects/{project}/cloud-accounts/{name}",
        "providers",
        "Get a cloud account (secrets masked)",
    ),
    with_body(
        op(
            "put",
            "/v1/projects/{project}/cloud-accounts/{name}",
            "providers",
            "Create or replace a cloud account (validated by its provider)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{project}/cloud-accounts/{name}",
        "providers",
        "Delete a cloud account no cluster uses",
    ),
    op(
        "get",
        "/v1/packs",
        "packs",
        "List built-in and custom packs",
    ),
    op(
        "get",
        "/v1/packs/{name}",
        "packs",
        "Get a pack with its versions and default values",
    ),
    with_body(
        op(
            "put",
            "/v1/packs/{name}",
            "packs",
            "Register or replace a custom pack (needs clusterProfile.create/update at tenant scope)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/packs/{name}",
        "packs",
        "Delete a custom pack no profile version uses",
    ),
    op(
        "get",
        "/v1/profiles",
        "profiles",
        "List tenant profiles with type, cloud type and versions",
    ),
    with_body(
        op(
            "post",
            "/v1/profiles:import",
            "profiles",
            "Import one tenant profile version (Palette or Fleetplane JSON, or multipart file)",
        ),
        "ProfileDocument",
    ),
    op(
        "get",
        "/v1/profiles/{name}",
        "profiles",
        "Get a profile with its versions",
    ),
    op(
        "get",
        "/v1/profiles/{name}/versions",
        "profiles",
        "List versions of a profile with lock and usage",
    ),
    with_body(
        op(
            "post",
            "/v1/profiles/{name}/versions",
            "profiles",
            "Create a version copied from another ({version, from})",
        ),
        "NewProfileVersion",
    ),
    op(
        "get",
        "/v1/profiles/{name}/versions/{version}",
        "profiles",
        "Get a version (sensitive defaults masked)",
    ),
    with_body(
        op(
            "put",
            "/v1/profiles/{name}/versions/{version}",
            "profiles",
            "Create or replace a version from a full spec (409 when locked)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/profiles/{name}/versions/{version}",
        "profiles",
        "Delete a version nothing references (the last one deletes the profile)",
    ),
    op(
        "get",
        "/v1/profiles/{name}/versions/{version}:export",
        "profiles",
        "Export a version in Fleetplane's import format",
    ),
    with_body(
        op(
            "post",
            "/v1/profiles/{name}/versions/{version}:render",
            "profiles",
            "Render a version's layers with values (preview)",
        ),
        "RenderRequest",
    ),
    op(
        "get",
        "/v1/projects/{project}/profiles",
        "profiles",
        "List project profiles with type, cloud type and versions",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/profiles:import",
            "profiles",
            "Import one project profile version (Palette or Fleetplane JSON, or multipart file)",
        ),
        "ProfileDocument",
    ),
    op(
        "get",
        "/v1/projects/{project}/profiles/{name}",
        "profiles",
        "Get a profile with its versions",
    ),
    op(
        "get",
        "/v1/projects/{project}/profiles/{name}/versions",
        "profiles",
        "List versions of a profile with lock and usage",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/profiles/{name}/versions",
            "profiles",
            "Create a version copied from another ({version, from})",
        ),
        "NewProfileVersion",
    ),
    op(
        "get",
        "/v1/projects/{project}/profiles/{name}/versions/{version}",
        "profiles",
        "Get a version (sensitive defaults masked)",
    ),
    with_body(
        op(
            "put",
            "/v1/projects/{project}/profiles/{name}/versions/{version}",
            "profiles",
            "Create or replace a version from a full spec (409 when locked)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{project}/profiles/{name}/versions/{version}",
        "profiles",
        "Delete a version nothing references (the last one deletes the profile)",
    ),
    op(
        "get",
        "/v1/projects/{project}/profiles/{name}/versions/{version}:export",
        "profiles",
        "Export a version in Fleetplane's import format",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/profiles/{name}/versions/{version}:render",
            "profiles",
            "Render a version's layers with values (preview)",
        ),
        "RenderRequest",
    ),
    op("get", "/v1/macros", "macros", "List tenant macros"),
    op("get", "/v1/macros/{name}", "macros", "Get a macro"),
    with_body(
        op(
            "put",
            "/v1/macros/{name}",
            "macros",
            "Create or replace a macro (name is an identifier)",
        ),
        "Object",
    ),
    op("delete", "/v1/macros/{name}", "macros", "Delete a macro"),
    op(
        "get",
        "/v1/projects/{project}/macros",
        "macros",
        "List project macros",
    ),
    op(
        "get",
        "/v1/projects/{project}/macros/{name}",
        "macros",
        "Get a macro",
    ),
    with_body(
        op(
            "put",
            "/v1/projects/{project}/macros/{name}",
            "macros",
            "Create or replace a macro (name is an identifier)",
        ),
        "Object",
    ),
    op(
        "delete",
        "/v1/projects/{project}/macros/{name}",
        "macros",
        "Delete a macro",
    ),
    op(
        "get",
        "/v1/workflows",
        "workflows",
        "List workflow definitions (built-ins and submitted)",
    ),
    op(
        "get",
        "/v1/workflows:schema",
        "workflows",
        "The JSON Schema of workflow definitions",
    ),
    op(
        "get",
        "/v1/workflows/{name}/versions/{version}",
        "workflows",
        "Get a workflow definition version",
    ),
    with_body(
        op(
            "put",
            "/v1/workflows/{name}/versions/{version}",
            "workflows",
            "Submit a workflow definition version (YAML or JSON); immutable once a run used it",
        ),
        "WorkflowDocument",
    ),
    op(
        "get",
        "/v1/runs",
        "runs",
        "List runs (?status=&definition=&limit=&continue=)",
    ),
    with_body(
        op(
            "post",
            "/v1/runs",
            "runs",
            "Start a run of name@version with inputs",
        ),
        "NewRun",
    ),
    op(
        "get",
        "/v1/runs/{id}",
        "runs",
        "Get a run: status, inputs, current step, counts, stuck steps; a fan-out's items and wave members as their numbers unless ?view=full",
    ),
    op(
        "get",
        "/v1/runs/{id}/journal",
        "runs",
        "A run's journal (?after=&limit=)",
    ),
    with_body(
        op("post", "/v1/runs/{id}:pause", "runs", "Pause a run"),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/runs/{id}:resume",
            "runs",
            "Resume a paused run (retryFailed re-drives failures)",
        ),
        "RunSignal",
    ),
    with_body(
        op("post", "/v1/runs/{id}:cancel", "runs", "Cancel a run"),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/runs/{id}:approve",
            "runs",
            "Grant a named approval",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/runs/{id}:reject",
            "runs",
            "Refuse a named approval",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/runs/{id}:redrive",
            "runs",
            "Re-drive a failed run (resume with retryFailed)",
        ),
        "RunSignal",
    ),
    op(
        "get",
        "/v1/projects/{project}/runs",
        "runs",
        "List runs (?status=&definition=&limit=&continue=)",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs",
            "runs",
            "Start a run of name@version with inputs",
        ),
        "NewRun",
    ),
    op(
        "get",
        "/v1/projects/{project}/runs/{id}",
        "runs",
        "Get a run: status, inputs, current step, counts, stuck steps; a fan-out's items and wave members as their numbers unless ?view=full",
    ),
    op(
        "get",
        "/v1/projects/{project}/runs/{id}/journal",
        "runs",
        "A run's journal (?after=&limit=)",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs/{id}:pause",
            "runs",
            "Pause a run",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs/{id}:resume",
            "runs",
            "Resume a paused run (retryFailed re-drives failures)",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs/{id}:cancel",
            "runs",
            "Cancel a run",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs/{id}:approve",
            "runs",
            "Grant a named approval",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs/{id}:reject",
            "runs",
            "Refuse a named approval",
        ),
        "RunSignal",
    ),
    with_body(
        op(
            "post",
            "/v1/projects/{project}/runs/{id}:redrive",
            "runs",
            "Re-drive a failed run (resume with retryFailed)",
        ),
        "RunSignal",
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
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.split_once('}')).map(|(n, _)| n))
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
            "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}', '.', '-', ':'], "_")),
            "parameters": parameters(o.path),
            "responses": {
                "default": {"description": "An error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "200": {"description": "Success", "content": {"application/json": {}}},
            },
        });
        if let Some(schema) = o.body {
            let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
            let mut content = json!({"application/json": {"schema": reference}});
            if schema == "ProviderUpload" {
                content["multipart/form-data"] = json!({"schema": reference});
            }
            operation["requestBody"] = json!({"required": true, "content": content});
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
                "ProviderUpload": {
                    "type": "object", "required": ["manifest", "component"],
                    "description": "As multipart/form-data: a `manifest` JSON part, a `component` file part and an optional `digest` part. As JSON: the component in base64.",
                    "properties": {
                        "manifest": {"type": "object"},
                        "component": {"type": "string", "description": "the .wasm component (base64 in JSON, a file part in multipart)"},
                        "digest": {"type": "string", "description": "sha256:<hex> the component must have"},
                    },
                },
                "ProfileDocument": {
                    "type": "object", "required": ["metadata", "spec"],
                    "description": "A profile version in Fleetplane's export format or Palette's (docs/profiles.md); or multipart/form-data with a file field",
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}, "spec": {"type": "object"}},
                },
                "NewProfileVersion": {
                    "type": "object", "required": ["version", "from"],
                    "properties": {"version": {"type": "string"}, "from": {"type": "string"}},
                },
                "RenderRequest": {
                    "type": "object",
                    "properties": {"values": {"type": "object", "additionalProperties": {"type": "string"}}, "cluster": {"type": "object"}},
                },
                "VariableAssignments": {
                    "type": "object", "required": ["assignments"],
                    "properties": {"assignments": {"type": "array", "items": {"type": "object", "required": ["profile", "variable"],
                        "properties": {"profile": {"type": "string"}, "variable": {"type": "string"}, "value": {"type": "string"},
                                       "clusters": {"type": "array", "items": {"type": "string"}}, "keepRunning": {"type": "boolean"}}}}},
                },
                "WorkflowDocument": {
                    "type": "object", "required": ["kind", "metadata", "spec"],
                    "description": "A workflow definition (docs/workflows.md), as YAML or JSON; its schema is GET /v1/workflows:schema",
                },
                "NewRun": {
                    "type": "object", "required": ["workflow"],
                    "properties": {"workflow": {"type": "string", "description": "name@version"}, "inputs": {"type": "object"}},
                },
                "RunSignal": {
                    "type": "object",
                    "properties": {"reason": {"type": "string"}, "name": {"type": "string", "description": "the approval (approve, reject)"}, "retryFailed": {"type": "boolean"}},
                },
                "ClusterVariables": {
                    "type": "object", "required": ["variables"],
                    "properties": {"variables": {"type": "object", "description": "{profile: {variable: value or null to remove the cluster's own value}}",
                        "additionalProperties": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}}},
                },
                "ClusterAttach": {
                    "type": "object", "required": ["template"],
                    "properties": {"template": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "scope": {"enum": ["tenant", "project"]}}},
                                   "timeZone": {"type": "string"}, "variables": {"type": "object"}},
                },
                "TemplateAction": {
                    "type": "object",
                    "properties": {"clusters": {"type": "array", "items": {"type": "string"}, "description": ":upgrade only; names as the variables view shows them"},
                                   "reason": {"type": "string"}},
                },
                "NewApiKey": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "expiresInDays": {"type": "integer", "minimum": 1, "maximum": 3650}},
                },
            },
        },
    })
}

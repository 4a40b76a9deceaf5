//! The REST client of the Fleetplane API (`/v1`), shared by the `fleetplane` CLI and the
//! Terraform provider. Generic calls work on `serde_json::Value`; typed helpers cover the kinds
//! of the foundation. Errors the server reports (problem+json) come back as
//! [`ClientError::Api`] with their code and field paths; failures to reach the server are
//! [`ClientError::Transport`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), fleetplane_client::ClientError> {
//! use fleetplane_client::{Client, ClientConfig, ListOptions};
//! let client = Client::new(ClientConfig::new("http://127.0.0.1:8080").api_key("fpk_…"))?;
//! for project in client.list_projects(&ListOptions::default()).await?.items {
//!     println!("{}", project.metadata.name);
//! }
//! # Ok(()) }
//! ```

mod error;
mod objects;
mod sse;

pub use error::{ClientError, FieldError, Problem};
pub use objects::{
    ApiKey, ApiKeySpec, ApiKeyStatus, AuditEvent, AuditQuery, BUILTIN_ROLES, ClusterTemplate,
    ClusterTemplateSpec, CreatedApiKey, ExclusionSpec, Grant, ListOptions, ListPage, LocalWindow,
    MaintenancePolicy, MaintenancePolicySpec, MaintenancePolicyStatus, Metadata, NewApiKey, Object,
    PolicyPreset, PolicyWindows, Project, ProjectSpec, RoleBinding, RoleBindingSpec, ScheduleSpec,
    TemplatePolicyRef, TemplateProfileRef, TemplateVariable, User, UserSpec,
    VariableAssignmentPatch, VariablesPatch, WhoAmI, Window, WindowsQuery,
};
pub use sse::{EventStream, ServerEvent, SseParser};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Result of the client's calls.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Where and as whom the client talks to the server.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080` (a path prefix is kept).
    pub endpoint: String,
    /// The API key (`fpk_…`); calls go unauthenticated without it.
    pub api_key: Option<String>,
    /// The project that project-scoped calls use (see [`Client::scoped_path`]).
    pub project: Option<String>,
    /// Time limit of one request, from sending to the end of the answer (not for event streams).
    pub timeout: Duration,
    /// Time limit for opening a connection.
    pub connect_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "********"))
            .field("project", &self.project)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for `endpoint` with no key, no project, a 60 s request and a 10 s connect
    /// time limit.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            api_key: None,
            project: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("fleetplane-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Sets the API key.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the project of project-scoped calls.
    #[must_use]
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Sets the time limit of one request.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the `User-Agent` header (e.g. `fleetplane-cli/0.1.0`).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }
}

/// A condition the server checks before a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    /// Write unconditionally.
    #[default]
    None,
    /// Write only if the object is still at this resource version (`If-Match`); a stale version
    /// answers 412 `PreconditionFailed`. Give the `resourceVersion` or the `ETag` as received.
    Match(String),
    /// Write only if the object does not exist yet (`If-None-Match: *`).
    Absent,
}

/// The answer to a `PUT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// The object as stored.
    pub object: T,
    /// True when the object was created (201), false when it was replaced (200).
    pub created: bool,
}

/// An object read together with its `ETag`.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The object.
    pub object: T,
    /// The `ETag` header (quoted resource version), when the server sent one.
    pub etag: Option<String>,
}

/// How a `DELETE` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The object is gone (204).
    Done,
    /// The server accepted the deletion and continues the work (202), with its answer if any.
    Accepted(Option<Value>),
}

/// A client of one Fleetplane server. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
    project: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.base.as_str())
            .field("authenticated", &self.auth.is_some())
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

/// An answer with a success status, body not yet decoded.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    url: String,
}

impl Answer {
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        // An empty body decodes as `null`, so a 204 suits `Value` and `Option`.
        let body: &[u8] = if self.body.is_empty() {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|source| ClientError::InvalidResponse {
            url: self.url.clone(),
            status: self.status.as_u16(),
            source,
        })
    }

    fn etag(&self) -> Option<String> {
        self.headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters), so a name
/// can never change the path it is put into.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the configured server.
    ///
    /// # Errors
    /// [`ClientError::InvalidEndpoint`] when the endpoint is not an absolute `http(s)` URL without
    /// query or fragment, [`ClientError::InvalidApiKey`] when the key cannot be sent in a header,
    /// [`ClientError::Build`] when TLS cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let invalid = |reason: &str| ClientError::InvalidEndpoint {
            endpoint: config.endpoint.clone(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(config.endpoint.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("it must name a host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment"));
        }
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&trimmed);
        let auth = match &config.api_key {
            Some(key) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                    .map_err(|_| ClientError::InvalidApiKey)?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self {
            http,
            base,
            auth,
            project: config.project,
            timeout: config.timeout,
        })
    }

    /// The base URL of the server.
    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    /// The configured project, if any.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// The collection path of a kind that lives at tenant or project scope:
    /// `/v1/projects/{project}/{collection}` when a project is configured, `/v1/{collection}`
    /// otherwise.
    pub fn scoped_path(&self, collection: &str) -> String {
        match &self.project {
            Some(p) => format!("/v1/projects/{}/{collection}", encode_segment(p)),
            None => format!("/v1/{collection}"),
        }
    }

    /// The collection path of a kind that lives only in projects:
    /// `/v1/projects/{project}/{collection}`.
    ///
    /// # Errors
    /// [`ClientError::NoProject`] when no project is configured.
    pub fn project_path(&self, collection: &str) -> Result<String> {
        let p = self.project.as_deref().ok_or(ClientError::NoProject)?;
        Ok(format!("/v1/projects/{}/{collection}", encode_segment(p)))
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url> {
        if !path.starts_with('/') {
            return Err(ClientError::InvalidPath(path.to_owned()));
        }
        let mut url = self.base.clone();
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        url.set_path(&format!("{}{p}", self.base.path().trim_end_matches('/')));
        if !q.is_empty() {
            url.set_query(Some(q));
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends one request; error statuses become [`ClientError::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        precondition: &Precondition,
    ) -> Result<Answer> {
        let url = self.url(path, query)?;
        let url_text = url.to_string();
        let mut req = self.http.request(method, url).timeout(self.timeout);
        req = req.header(ACCEPT, "application/json, application/problem+json");
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        match precondition {
            Precondition::None => {}
            Precondition::Match(version) => {
                let etag = if version.starts_with('"') || version.starts_with("W/") {
                    version.clone()
                } else {
                    format!("\"{version}\"")
                };
                req = req.header("if-match", etag);
            }
            Precondition::Absent => req = req.header("if-none-match", "*"),
        }
        if let Some(body) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        let transport = |source| ClientError::Transport {
            url: url_text.clone(),
            source,
        };
        let response = req.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        if !status.is_success() {
            return Err(ClientError::from_answer(status, &headers, &body));
        }
        Ok(Answer {
            status,
            headers,
            body,
            url: url_text,
        })
    }

    fn encode(body: &impl Serialize) -> Result<Vec<u8>> {
        serde_json::to_vec(body).map_err(ClientError::Encode)
    }

    /// `GET path`: one object.
    ///
    /// # Errors
    /// [`ClientError::Api`] (e.g. 404 `NotFound`), [`ClientError::Transport`],
    /// [`ClientError::InvalidResponse`], [`ClientError::InvalidPath`].
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, &[], None, &Precondition::None)
            .await?
            .json()
    }

    /// `GET path` with query parameters, decoded as `T`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.send(Method::GET, path, query, None, &Precondition::None)
            .await?
            .json()
    }

    /// `GET path`: one object with its `ETag`, for read-modify-write.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_versioned(&self, path: &str) -> Result<Versioned<Value>> {
        let answer = self
            .send(Method::GET, path, &[], None, &Precondition::None)
            .await?;
        Ok(Versioned {
            object: answer.json()?,
            etag: answer.etag(),
        })
    }

    /// `GET path?limit=&continue=&labelSelector=`: one page of a collection.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list(&self, path: &str, options: &ListOptions) -> Result<ListPage<Value>> {
        self.get_as(path, &options.to_query()).await
    }

    /// Every item of a collection, following `continue` tokens (`options.limit` is the page
    /// size).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_all(&self, path: &str, options: &ListOptions) -> Result<Vec<Value>> {
        let mut options = options.clone();
        let mut items = Vec::new();
        loop {
            let page = self.list(path, &options).await?;
            items.extend(page.items);
            match page.continue_token {
                // A token equal to the one just sent would loop forever; treat it as the end.
                Some(t) if Some(&t) != options.continue_token.as_ref() => {
                    options.continue_token = Some(t);
                }
                _ => return Ok(items),
            }
        }
    }

    /// `PUT path`: create or replace an object.
    ///
    /// # Errors
    /// [`ClientError::Api`] (400 `ValidationFailed` with field paths, 412 `PreconditionFailed`,
    /// 409 `AlreadyExists` with [`Precondition::Absent`], 403, 404, 413), and as
    /// [`Client::get`].
    pub async fn put(
        &self,
        path: &str,
        body: &Value,
        precondition: &Precondition,
    ) -> Result<Written<Value>> {
        self.put_as(path, body, precondition).await
    }

    async fn put_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        precondition: &Precondition,
    ) -> Result<Written<T>> {
        let answer = self
            .send(
                Method::PUT,
                path,
                &[],
                Some(Self::encode(body)?),
                precondition,
            )
            .await?;
        Ok(Written {
            object: answer.json()?,
            created: answer.status == StatusCode::CREATED,
        })
    }

    /// `DELETE path`.
    ///
    /// # Errors
    /// [`ClientError::Api`] (404, 412 with a stale [`Precondition::Match`], 403), and as
    /// [`Client::get`].
    pub async fn delete(&self, path: &str, precondition: &Precondition) -> Result<Deleted> {
        let answer = self
            .send(Method::DELETE, path, &[], None, precondition)
            .await?;
        if answer.status == StatusCode::ACCEPTED {
            return Ok(Deleted::Accepted(answer.json::<Option<Value>>()?));
        }
        Ok(Deleted::Done)
    }

    /// `PATCH path` with a JSON body (`application/json`); the answer's JSON.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn patch(
        &self,
        path: &str,
        body: &Value,
        precondition: &Precondition,
    ) -> Result<Value> {
        self.send(
            Method::PATCH,
            path,
            &[],
            Some(Self::encode(body)?),
            precondition,
        )
        .await?
        .json()
    }

    /// `POST path` with a JSON body; the answer's JSON (`null` when it has no body).
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.post_as(path, body).await
    }

    async fn post_as<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(
            Method::POST,
            path,
            &[],
            Some(Self::encode(body)?),
            &Precondition::None,
        )
        .await?
        .json()
    }

    /// `POST {object_path}:{verb}`: an action on an object, e.g. `upgrade` on a cluster template.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn post_action(&self, object_path: &str, verb: &str, body: &Value) -> Result<Value> {
        self.post(
            &format!(
                "{}:{}",
                object_path.trim_end_matches('/'),
                encode_segment(verb)
            ),
            body,
        )
        .await
    }

    /// `GET /v1/events`: the Server-Sent Events stream of changes the caller may see. The
    /// request time limit does not apply to the stream.
    ///
    /// # Errors
    /// As [`Client::get`] for opening the stream.
    pub async fn events(&self) -> Result<EventStream> {
        let url = self.url("/v1/events", &[])?;
        let url_text = url.to_string();
        let mut req = self.http.get(url).header(ACCEPT, "text/event-stream");
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let response = req.send().await.map_err(|source| ClientError::Transport {
            url: url_text.clone(),
            source,
        })?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            return Err(ClientError::from_answer(status, &headers, &body));
        }
        Ok(EventStream {
            response,
            parser: SseParser::new(),
            url: url_text,
        })
    }

    // ----- typed helpers of the foundation kinds -----

    /// `GET /v1/whoami`: the caller, its roles and permissions.
    ///
    /// # Errors
    /// 401 `Unauthorized` without a valid key; as [`Client::get`].
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get_as("/v1/whoami", &[]).await
    }

    /// `GET /v1/projects`: one page of projects the caller may see.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_projects(&self, options: &ListOptions) -> Result<ListPage<Project>> {
        self.get_as("/v1/projects", &options.to_query()).await
    }

    /// `GET /v1/projects/{name}`.
    ///
    /// # Errors
    /// 404 `NotFound` also when the caller may not see the project; as [`Client::get`].
    pub async fn get_project(&self, name: &str) -> Result<Project> {
        self.get_as(&format!("/v1/projects/{}", encode_segment(name)), &[])
            .await
    }

    /// `PUT /v1/projects/{name}`: create or replace a project.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn put_project(
        &self,
        project: &Project,
        precondition: &Precondition,
    ) -> Result<Written<Project>> {
        let path = format!("/v1/projects/{}", encode_segment(&project.metadata.name));
        self.put_as(&path, project, precondition).await
    }

    /// `DELETE /v1/projects/{name}`.
    ///
    /// # Errors
    /// As [`Client::delete`].
    pub async fn delete_project(&self, name: &str, precondition: &Precondition) -> Result<Deleted> {
        self.delete(
            &format!("/v1/projects/{}", encode_segment(name)),
            precondition,
        )
        .await
    }

    /// `GET /v1/users`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_users(&self, options: &ListOptions) -> Result<ListPage<User>> {
        self.get_as("/v1/users", &options.to_query()).await
    }

    /// `GET /v1/users/{name}`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_user(&self, name: &str) -> Result<User> {
        self.get_as(&format!("/v1/users/{}", encode_segment(name)), &[])
            .await
    }

    /// `PUT /v1/users/{name}`: create or replace a user (the password is write-only).
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn put_user(
        &self,
        user: &User,
        precondition: &Precondition,
    ) -> Result<Written<User>> {
        let path = format!("/v1/users/{}", encode_segment(&user.metadata.name));
        self.put_as(&path, user, precondition).await
    }

    /// `DELETE /v1/users/{name}`.
    ///
    /// # Errors
    /// As [`Client::delete`].
    pub async fn delete_user(&self, name: &str, precondition: &Precondition) -> Result<Deleted> {
        self.delete(&format!("/v1/users/{}", encode_segment(name)), precondition)
            .await
    }

    /// `GET /v1/users/{user}/api-keys`: the keys of a user, without secrets.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_api_keys(
        &self,
        user: &str,
        options: &ListOptions,
    ) -> Result<ListPage<ApiKey>> {
        self.get_as(
            &format!("/v1/users/{}/api-keys", encode_segment(user)),
            &options.to_query(),
        )
        .await
    }

    /// `POST /v1/users/{user}/api-keys`: a new key; the answer holds the secret, shown only once.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn create_api_key(&self, user: &str, key: &NewApiKey) -> Result<CreatedApiKey> {
        self.post_as(&format!("/v1/users/{}/api-keys", encode_segment(user)), key)
            .await
    }

    /// `DELETE /v1/users/{user}/api-keys/{id}`: revoke a key.
    ///
    /// # Errors
    /// As [`Client::delete`].
    pub async fn revoke_api_key(&self, user: &str, id: &str) -> Result<Deleted> {
        let path = format!(
            "/v1/users/{}/api-keys/{}",
            encode_segment(user),
            encode_segment(id)
        );
        self.delete(&path, &Precondition::None).await
    }

    /// `GET /v1/role-bindings`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_role_bindings(&self, options: &ListOptions) -> Result<ListPage<RoleBinding>> {
        self.get_as("/v1/role-bindings", &options.to_query()).await
    }

    /// `GET /v1/role-bindings/{name}`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_role_binding(&self, name: &str) -> Result<RoleBinding> {
        self.get_as(&format!("/v1/role-bindings/{}", encode_segment(name)), &[])
            .await
    }

    /// `PUT /v1/role-bindings/{name}`.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn put_role_binding(
        &self,
        binding: &RoleBinding,
        precondition: &Precondition,
    ) -> Result<Written<RoleBinding>> {
        let path = format!(
            "/v1/role-bindings/{}",
            encode_segment(&binding.metadata.name)
        );
        self.put_as(&path, binding, precondition).await
    }

    /// `DELETE /v1/role-bindings/{name}`.
    ///
    /// # Errors
    /// As [`Client::delete`].
    pub async fn delete_role_binding(
        &self,
        name: &str,
        precondition: &Precondition,
    ) -> Result<Deleted> {
        self.delete(
            &format!("/v1/role-bindings/{}", encode_segment(name)),
            precondition,
        )
        .await
    }

    /// `GET /v1/audit-events`: one page of the audit log, filtered.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_audit_events(&self, query: &AuditQuery) -> Result<ListPage<AuditEvent>> {
        self.get_as("/v1/audit-events", &query.to_query()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_prefixes_kept() {
        let ok = [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/v1/projects?limit=2",
            ),
            (
                "https://fp.example.com/",
                "https://fp.example.com/v1/projects?limit=2",
            ),
            (
                "https://example.com/fleet/",
                "https://example.com/fleet/v1/projects?limit=2",
            ),
        ];
        for (endpoint, want) in ok {
            let c = Client::new(ClientConfig::new(endpoint)).unwrap();
            let url = c.url("/v1/projects", &[("limit", "2".into())]).unwrap();
            assert_eq!(url.as_str(), want, "{endpoint}");
        }
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://x",
            "http://x/?a=b",
            "http://x/#f",
            "mailto:a@b",
        ] {
            let e = Client::new(ClientConfig::new(bad)).unwrap_err();
            assert!(
                matches!(e, ClientError::InvalidEndpoint { .. }),
                "{bad}: {e}"
            );
            assert!(e.is_caller_error());
        }
        let e = Client::new(ClientConfig::new("http://x").api_key("bad\nkey")).unwrap_err();
        assert!(matches!(e, ClientError::InvalidApiKey));
    }

    #[test]
    fn paths_must_be_absolute_and_queries_are_encoded() {
        let c = Client::new(ClientConfig::new("http://h")).unwrap();
        assert!(matches!(
            c.url("v1/x", &[]),
            Err(ClientError::InvalidPath(_))
        ));
        let url = c.url(
            "/v1/audit-events?actor=a",
            &[("since", "2025-01-01T00:00:00+01:00".into())],
        );
        assert_eq!(
            url.unwrap().as_str(),
            "http://h/v1/audit-events?actor=a&since=2025-01-01T00%3A00%3A00%2B01%3A00"
        );
    }

    #[test]
    fn segments_cannot_escape_their_place() {
        let cases = [
            ("web", "web"),
            ("a/../b", "a%2F..%2Fb"),
            ("x?y#z", "x%3Fy%23z"),
            ("é", "%C3%A9"),
            ("a b", "a%20b"),
        ];
        for (raw, want) in cases {
            assert_eq!(encode_segment(raw), want);
        }
    }

    #[test]
    fn scoped_paths_follow_the_project() {
        let tenant = Client::new(ClientConfig::new("http://h")).unwrap();
        assert_eq!(tenant.scoped_path("macros"), "/v1/macros");
        assert!(matches!(
            tenant.project_path("clusters"),
            Err(ClientError::NoProject)
        ));
        let project = Client::new(ClientConfig::new("http://h").project("web")).unwrap();
        assert_eq!(project.scoped_path("macros"), "/v1/projects/web/macros");
        assert_eq!(
            project.project_path("clusters").unwrap(),
            "/v1/projects/web/clusters"
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        let cfg = ClientConfig::new("http://h").api_key("fpk_id_secret");
        assert!(!format!("{cfg:?}").contains("secret"));
        let c = Client::new(cfg).unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}

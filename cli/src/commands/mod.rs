//! What the commands do, one module per noun. Each gets the parsed arguments and a [`Ctx`]; data
//! goes to standard output through [`print`], messages to standard error through [`note`].

mod apikey;
mod apply;
mod audit;
mod bench;
mod cloud_account;
mod cluster;
mod completion;
mod login;
mod macro_;
mod pack;
mod policy;
mod profile;
mod project;
mod provider;
mod rolebinding;
mod run;
mod server;
mod template;
mod user;
mod whoami;
mod workflow;

use crate::args::{Cli, Command, DeleteArgs, GlobalArgs, ListArgs, MetadataArgs};
use crate::config::{self, FileConfig, Settings};
use crate::output::{self, Column};
use anyhow::Context as _;
use fleetplane_client::{Client, ClientConfig, Deleted, ListOptions, Precondition};
use serde_json::Value;
use std::io::Write as _;
use std::path::PathBuf;

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command failed with; [`crate::exit::code_of`] turns it into an exit code.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Server(args) => server::run(args).await,
        Command::Completion(args) => completion::run(&args),
        Command::Bench(args) => bench::run(&global, args).await,
        Command::Login(args) => login::run(&global, args).await,
        Command::Whoami => whoami::run(&Ctx::new(&global)?).await,
        Command::Project(cmd) => project::run(&Ctx::new(&global)?, cmd).await,
        Command::User(cmd) => user::run(&Ctx::new(&global)?, cmd).await,
        Command::ApiKey(cmd) => apikey::run(&Ctx::new(&global)?, cmd).await,
        Command::RoleBinding(cmd) => rolebinding::run(&Ctx::new(&global)?, cmd).await,
        Command::Policy(cmd) => policy::run(&Ctx::new(&global)?, cmd).await,
        Command::Template(cmd) => template::run(&Ctx::new(&global)?, cmd).await,
        Command::Cluster(cmd) => cluster::run(&Ctx::new(&global)?, cmd).await,
        Command::Audit(cmd) => audit::run(&Ctx::new(&global)?, cmd).await,
        Command::Provider(cmd) => provider::run(&global, cmd).await,
        Command::CloudAccount(cmd) => cloud_account::run(&Ctx::new(&global)?, cmd).await,
        Command::Pack(cmd) => pack::run(&Ctx::new(&global)?, cmd).await,
        Command::Profile(cmd) => profile::run(&Ctx::new(&global)?, cmd).await,
        Command::Macro(cmd) => macro_::run(&Ctx::new(&global)?, cmd).await,
        Command::Workflow(cmd) => workflow::run(&Ctx::new(&global)?, cmd).await,
        Command::Run(cmd) => run::run(&Ctx::new(&global)?, cmd).await,
        Command::Apply(args) => apply::apply(&Ctx::new(&global)?, args).await,
        Command::Diff(args) => apply::diff(&global, args).await,
        Command::Get(args) => apply::get(&Ctx::new(&global)?, args).await,
    }
}

/// Reads a process environment variable (the one place the commands read the environment).
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where the config file is, from the process environment.
pub fn config_path() -> Option<PathBuf> {
    config::config_path(&env_var)
}

/// Reads the config file, if there is a place for one.
///
/// # Errors
/// The file exists but cannot be read or is invalid.
pub fn read_config() -> anyhow::Result<FileConfig> {
    match config_path() {
        Some(path) => config::read(&path),
        None => Ok(FileConfig::default()),
    }
}

/// What a client command runs with: the options, the effective settings and a client.
pub struct Ctx {
    /// Global options.
    pub global: GlobalArgs,
    /// Effective settings.
    pub settings: Settings,
    /// The API client.
    pub client: Client,
}

impl Ctx {
    /// Resolves the settings (flags and variables over the config file) and builds the client.
    ///
    /// # Errors
    /// The config file is invalid or the endpoint or key cannot be used.
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Self> {
        let file = read_config()?;
        let api_key = env_var("FLEETPLANE_API_KEY");
        let settings = config::resolve(
            global.endpoint.as_deref(),
            api_key.as_deref(),
            global.project.as_deref(),
            &file,
        );
        let client = build_client(&settings)?;
        Ok(Self {
            global: global.clone(),
            settings,
            client,
        })
    }

    /// Prints a list of objects in the output format.
    ///
    /// # Errors
    /// Encoding or writing fails.
    pub fn print_list(&self, items: &[Value], columns: &[Column]) -> anyhow::Result<()> {
        print(&output::render_list(self.global.output, items, columns)?)
    }

    /// Prints one object in the output format.
    ///
    /// # Errors
    /// Encoding or writing fails.
    pub fn print_one(&self, item: &Value, columns: &[Column]) -> anyhow::Result<()> {
        print(&output::render_one(self.global.output, item, columns)?)
    }

    /// Lists a collection: every page, or pages until `--limit` objects.
    ///
    /// # Errors
    /// The API call fails.
    pub async fn list(&self, path: &str, args: &ListArgs) -> anyhow::Result<Vec<Value>> {
        let mut options = ListOptions {
            limit: args.limit.map(|l| l.min(500)),
            label_selector: args.selector.clone(),
            ..ListOptions::default()
        };
        let Some(limit) = args.limit else {
            return Ok(self.client.list_all(path, &options).await?);
        };
        let mut items = Vec::new();
        loop {
            let page = self.client.list(path, &options).await?;
            items.extend(page.items);
            match page.continue_token {
                Some(t)
                    if items.len() < limit as usize
                        && Some(&t) != options.continue_token.as_ref() =>
                {
                    options.continue_token = Some(t);
                }
                _ => break,
            }
        }
        items.truncate(limit as usize);
        Ok(items)
    }

    /// Gets one object and prints it.
    ///
    /// # Errors
    /// The API call fails (404 when the object does not exist or cannot be seen).
    pub async fn show(&self, path: &str, what: &str, columns: &[Column]) -> anyhow::Result<()> {
        let item = self
            .client
            .get(path)
            .await
            .with_context(|| format!("cannot get {what}"))?;
        self.print_one(&item, columns)
    }

    /// Creates an object with `PUT` and `If-None-Match: *` (so an existing object is not
    /// replaced), tells so on standard error and prints the object.
    ///
    /// # Errors
    /// The API call fails (409/412 when it exists, 400 with field paths when invalid).
    pub async fn create(
        &self,
        path: &str,
        body: &Value,
        what: &str,
        columns: &[Column],
    ) -> anyhow::Result<()> {
        let written = match self.client.put(path, body, &Precondition::Absent).await {
            Ok(w) => w,
            // With `If-None-Match: *`, a failed precondition means the object exists.
            Err(e) if e.status() == Some(412) || e.code() == Some("AlreadyExists") => {
                return Err(anyhow::Error::from(e).context(format!("{what} already exists")));
            }
            Err(e) => return Err(anyhow::Error::from(e).context(format!("cannot create {what}"))),
        };
        note(&format!(
            "{what} {}",
            if written.created {
                "created"
            } else {
                "replaced"
            }
        ));
        self.print_one(&written.object, columns)
    }

    /// Deletes an object, optionally only at a resource version, and tells so on standard error.
    ///
    /// # Errors
    /// The API call fails.
    pub async fn delete(&self, path: &str, args: &DeleteArgs, what: &str) -> anyhow::Result<()> {
        let precondition = args
            .if_match
            .clone()
            .map_or(Precondition::None, Precondition::Match);
        let outcome = self
            .client
            .delete(path, &precondition)
            .await
            .with_context(|| format!("cannot delete {what}"))?;
        match outcome {
            Deleted::Done => note(&format!("{what} deleted")),
            Deleted::Accepted(_) => note(&format!("{what} is being deleted")),
        }
        Ok(())
    }
}

/// Builds the API client for the settings.
///
/// # Errors
/// The endpoint or key cannot be used.
pub fn build_client(settings: &Settings) -> anyhow::Result<Client> {
    let mut config = ClientConfig::new(&settings.endpoint)
        .user_agent(concat!("fleetplane-cli/", env!("CARGO_PKG_VERSION")));
    config.api_key = settings.api_key.clone();
    config.project = settings.project.clone();
    Ok(Client::new(config)?)
}

/// The `metadata` of a new object.
pub fn metadata(name: &str, args: &MetadataArgs) -> fleetplane_client::Metadata {
    let mut m = fleetplane_client::Metadata::named(name);
    m.description = args.description.clone();
    m.labels = args.labels.iter().cloned().collect();
    m
}

/// Writes data to standard output.
///
/// # Errors
/// Standard output is closed or broken.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    out.flush().context("cannot write to standard output")
}

/// Writes a message to standard error (a failure to do so is ignored: there is nowhere to tell).
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// Reads the first line of standard input, trimmed, prompting on standard error when it is a
/// terminal.
///
/// # Errors
/// Standard input cannot be read or the line is empty.
pub fn read_secret_line(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let _ = write!(std::io::stderr().lock(), "{prompt}: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    let line = line.trim().to_owned();
    anyhow::ensure!(
        !line.is_empty(),
        "no {prompt} on standard input",
        prompt = prompt.to_lowercase()
    );
    Ok(line)
}

/// `"kind \"name\""` for messages.
pub fn named(kind: &str, name: &str) -> String {
    format!("{kind} {name:?}")
}

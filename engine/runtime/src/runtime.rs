//! The runtime loop: batches of transitions committed in one transaction each.

use crate::executor::{EffectExecutor, is_internal};
use crate::hook::{Applied, NoHook, TransitionHook};
use crate::{Clock, Result, RuntimeError};
use fleetplane_store::{RunHeader, Store, WriteOps};
use fleetplane_workflow::run::{ChildOutcome, RunError, RunScope};
use fleetplane_workflow::{Definition, Effect, Event, Item, RunState, apply};
use jiff::Timestamp;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Tuning.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// At most this many events are applied per batch (one commit).
    pub batch_events: usize,
    /// At most this many external effects are performed at once. Each slot takes the next
    /// queued effect as soon as its last one is answered, whatever the batches are doing.
    pub max_in_flight: usize,
    /// At most this many effects are performed ahead of the batches that apply their
    /// answers (in flight, or answered and not yet committed): a slot waits for room before
    /// it takes the next effect. When the batches are the slower stage this bounds the
    /// answers held in memory and the size of a batch (and so the latency of the requests
    /// that share the cores with it).
    pub max_answers_ahead: usize,
    /// Parsed states of non-terminal runs kept in memory between batches; beyond this, only
    /// the runs of the last batch are kept (a busy parent stays hot; others are re-read).
    pub cached_runs: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            batch_events: 10_000,
            max_in_flight: 64,
            max_answers_ahead: 1_024,
            cached_runs: 20_000,
        }
    }
}

/// A root run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id (the caller's choice, e.g. a UUID v7).
    pub id: String,
    /// The digest of a registered definition.
    pub definition: String,
    /// The inputs (validated by the machine when the run starts).
    pub inputs: Value,
    /// The cluster the run is about (deploys).
    pub subject: Option<Item>,
    /// The project the run belongs to.
    pub project: Option<String>,
    /// A cluster key to lock for the run's lifetime (`ClusterBusy` when another run holds it).
    pub cluster: Option<String>,
}

/// What one [`Runtime::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Events applied (and committed).
    pub applied: usize,
    /// Runs whose state was written.
    pub runs: usize,
    /// External effects queued for performing.
    pub effects: usize,
}

/// Why [`Runtime::run_until_idle`] returned: nothing is ready now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    /// The earliest armed timer, if any (advance a manual clock to it to go on).
    pub next_timer: Option<Timestamp>,
    /// Transitions committed since the call.
    pub applied: usize,
}

/// Where an applied event came from, so the batch can consume it.
enum Source {
    Answer(u64),
    Inbox(u64),
    Timer(String),
}

type Answer = (u64, String, Option<Event>);

/// An external effect to perform: its outbox sequence number, its run and the effect.
type Job = (u64, String, Effect);

/// External effects waiting for a slot, in the order they were committed.
type Queue = Arc<Mutex<VecDeque<Job>>>;

/// The durable runtime. One per store: it is the only writer of runs.
pub struct Runtime {
    client: RuntimeClient,
    clock: Arc<dyn Clock>,
    executor: Arc<dyn EffectExecutor>,
    hook: Arc<dyn TransitionHook>,
    config: RuntimeConfig,
    commits: watch::Sender<u64>,
    cache: HashMap<String, (RunHeader, RunState)>,
    queued: Queue,
    /// The performing slots: each takes queued effects one after the other until none is left.
    slots: JoinSet<()>,
    answered: mpsc::UnboundedSender<Answer>,
    /// Room for effects performed ahead of the batches ([`RuntimeConfig::max_answers_ahead`]):
    /// a slot takes a permit per effect, a committed batch gives back one per answer.
    ahead: Arc<Semaphore>,
    answers_in: mpsc::UnboundedReceiver<Answer>,
    /// Answers received and not yet committed.
    answers: Vec<Answer>,
}

fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    }
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| corrupt(what, e))
}

/// The store key of a run's timer.
fn timer_id(run: &str, timer: u64) -> String {
    format!("{run}\u{1f}{timer}")
}

fn millis(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

fn status_name(state: &RunState) -> String {
    serde_json::to_value(state.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn header_for(state: &RunState, project: Option<String>, cluster: Option<String>) -> RunHeader {
    RunHeader {
        id: state.id.clone(),
        status: status_name(state),
        terminal: state.status.is_terminal(),
        parent: match &state.scope {
            RunScope::Root => None,
            RunScope::Child { parent, .. } => Some(parent.clone()),
        },
        definition: state.definition.name.clone(),
        project,
        cluster,
    }
}

/// A cloneable handle for the API: registers definitions, starts runs and appends events to
/// inboxes (each its own transaction) and wakes the runtime.
#[derive(Clone)]
pub struct RuntimeClient {
    store: Store,
    defs: Arc<RwLock<HashMap<String, Arc<Definition>>>>,
    wake: Arc<Notify>,
}

impl RuntimeClient {
    /// Makes `def` available to runs pinned to its digest; returns the digest.
    pub fn register(&self, def: Definition) -> String {
        let digest = def.digest();
        self.defs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest.clone(), Arc::new(def));
        digest
    }

    /// The store runs live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The registered definition with `digest`.
    pub fn definition(&self, digest: &str) -> Option<Arc<Definition>> {
        self.defs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    /// Creates a `Pending` root run and queues its `Started` event, in one transaction.
    ///
    /// # Errors
    /// [`RuntimeError::UnknownDefinition`], [`RuntimeError::RunExists`],
    /// [`RuntimeError::ClusterBusy`], store errors.
    pub fn start_run(&self, new: NewRun) -> Result<()> {
        let mut w = self.store.write()?;
        self.start_in(&mut *w, new)?;
        w.commit()?;
        self.wake();
        Ok(())
    }

    /// Like [`RuntimeClient::start_run`], inside the caller's transaction `w` (a domain write
    /// and the run it starts commit together). Call [`RuntimeClient::wake`] after the commit.
    ///
    /// # Errors
    /// As [`RuntimeClient::start_run`].
    pub fn start_in(&self, w: &mut dyn WriteOps, new: NewRun) -> Result<()> {
        let def = self
            .definition(&new.definition)
            .ok_or_else(|| RuntimeError::UnknownDefinition(new.definition.clone()))?;
        let state = RunState::new(new.id.clone(), &def);
        if w.run(&new.id)?.is_some() {
            return Err(RuntimeError::RunExists(new.id));
        }
        if let Some(cluster) = &new.cluster
            && let Some(holder) = w.lock_cluster(cluster, &new.id)?
        {
            return Err(RuntimeError::ClusterBusy {
                cluster: cluster.clone(),
                holder,
            });
        }
        let header = header_for(&state, new.project.clone(), new.cluster.clone());
        w.put_run(&header, &to_json("run state", &state)?)?;
        let started = Event::Started {
            inputs: new.inputs,
            subject: new.subject,
        };
        w.push_inbox(&new.id, &to_json("event", &started)?)?;
        Ok(())
    }

    /// Wakes the runtime after runs were started or events sent in a caller's transaction.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Appends `event` (a signal, a limits edit, `WindowsChanged`) to run `run`'s inbox.
    ///
    /// # Errors
    /// [`RuntimeError::RunNotFound`], store errors.
    pub fn send(&self, run: &str, event: &Event) -> Result<()> {
        let mut w = self.store.write()?;
        self.send_in(&mut *w, run, event)?;
        w.commit()?;
        self.wake.notify_one();
        Ok(())
    }

    /// Like [`RuntimeClient::send`], inside the caller's transaction `w`. Call
    /// [`RuntimeClient::wake`] after the commit.
    ///
    /// # Errors
    /// As [`RuntimeClient::send`].
    pub fn send_in(&self, w: &mut dyn WriteOps, run: &str, event: &Event) -> Result<()> {
        if w.run(run)?.is_none() {
            return Err(RuntimeError::RunNotFound(run.to_owned()));
        }
        w.push_inbox(run, &to_json("event", event)?)?;
        Ok(())
    }
}

impl Runtime {
    /// Opens the runtime over `store` and recovers: the outbox (effects committed but not
    /// answered before a stop or crash) is queued to be performed again; timers and inboxes are
    /// durable and picked up by the next [`Runtime::tick`].
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot be read; [`RuntimeError::Corrupt`] for an
    /// undecodable outbox entry.
    pub fn open(
        store: Store,
        clock: Arc<dyn Clock>,
        executor: Arc<dyn EffectExecutor>,
        config: RuntimeConfig,
    ) -> Result<Self> {
        let mut queued = VecDeque::new();
        {
            let r = store.read()?;
            let mut after = 0;
            loop {
                let page = r.outbox(after, 10_000)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for e in page {
                    let effect: Effect = serde_json::from_slice(&e.effect)
                        .map_err(|err| corrupt(format!("outbox {}", e.seq), err))?;
                    queued.push_back((e.seq, e.run, effect));
                }
            }
        }
        let (answered, answers_in) = mpsc::unbounded_channel();
        let ahead = Arc::new(Semaphore::new(config.max_answers_ahead.max(1)));
        Ok(Self {
            client: RuntimeClient {
                store,
                defs: Arc::default(),
                wake: Arc::new(Notify::new()),
            },
            clock,
            executor,
            hook: Arc::new(NoHook),
            config,
            commits: watch::channel(0).0,
            cache: HashMap::new(),
            queued: Arc::new(Mutex::new(queued)),
            slots: JoinSet::new(),
            answered,
            ahead,
            answers_in,
            answers: Vec::new(),
        })
    }

    /// Reacts to every transition with `hook`, inside the batch's transaction.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn TransitionHook>) -> Self {
        self.hook = hook;
        self
    }

    /// Makes `def` available to runs pinned to its digest; returns the digest.
    pub fn register(&mut self, def: Definition) -> String {
        self.client.register(def)
    }

    /// The store the runtime writes to.
    pub fn store(&self) -> &Store {
        &self.client.store
    }

    /// A handle to start runs and send events while [`Runtime::serve`] owns the runtime.
    pub fn client(&self) -> RuntimeClient {
        self.client.clone()
    }

    /// Counts committed batches; watch it to see progress (tests, metrics).
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// See [`RuntimeClient::start_run`].
    ///
    /// # Errors
    /// As [`RuntimeClient::start_run`].
    pub fn start_run(&mut self, new: NewRun) -> Result<()> {
        self.client.start_run(new)
    }

    /// See [`RuntimeClient::send`].
    ///
    /// # Errors
    /// As [`RuntimeClient::send`].
    pub fn send(&mut self, run: &str, event: &Event) -> Result<()> {
        self.client.send(run, event)
    }

    /// Drives runs until `shutdown` completes: batches until idle, then sleeps until the next
    /// timer (by the runtime's clock) or until a client starts a run or sends an event. A
    /// failed batch is logged and retried after a second (nothing of it was committed).
    pub async fn serve(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let wake = self.client.wake.clone();
        let mut failures = 0u32;
        loop {
            let pause = match self.run_until_idle().await {
                Ok(idle) => {
                    failures = 0;
                    idle.next_timer
                        .map(|at| {
                            let left = at.duration_since(self.clock.now());
                            std::time::Duration::try_from(left).unwrap_or_default()
                        })
                        .unwrap_or(std::time::Duration::from_secs(3600))
                }
                Err(e) => {
                    // 1 s, doubling to 30 s while it keeps failing (a full disk takes a while
                    // to fix; retrying each second only fills the log).
                    let pause = std::time::Duration::from_secs(1 << failures.min(5))
                        .min(std::time::Duration::from_secs(30));
                    failures = failures.saturating_add(1);
                    tracing::error!(error = %e, failures, retry_in_s = pause.as_secs(), "workflow runtime batch failed; retrying");
                    pause
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Whether external effects are being performed or wait to be.
    pub fn busy(&self) -> bool {
        !self.slots.is_empty()
            || !self.queue().is_empty()
            || !self.answers.is_empty()
            || !self.answers_in.is_empty()
    }

    /// Runs batches until nothing is ready at the clock's current instant: no inbox event, no
    /// due timer, no effect in flight or queued.
    ///
    /// # Errors
    /// As [`Runtime::tick`].
    pub async fn run_until_idle(&mut self) -> Result<Idle> {
        let mut applied = 0;
        loop {
            let report = self.tick_blocking()?;
            applied += report.applied;
            if report.applied > 0 {
                continue;
            }
            if !self.slots.is_empty() {
                tokio::select! {
                    Some(answer) = self.answers_in.recv() => self.answers.push(answer),
                    Some(done) = self.slots.join_next() => slot_ended(done),
                }
                continue;
            }
            let next_timer = self
                .store()
                .read()?
                .next_timer()?
                .and_then(|t| Timestamp::from_millisecond(i64::try_from(t.at_ms).ok()?).ok());
            return Ok(Idle {
                next_timer,
                applied,
            });
        }
    }

    /// [`Runtime::tick`] from async code: a batch is synchronous store work (reads, apply,
    /// an fsync) that can take a while at fleet scale; on a multi-threaded runtime the worker
    /// hands its other tasks (API requests) to another thread for the duration instead of
    /// holding them behind the batch.
    fn tick_blocking(&mut self) -> Result<TickReport> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.tick())
            }
            _ => self.tick(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in the answers of performed effects: slots that ended first, so that every
    /// answer a reaped slot sent is among them.
    fn collect(&mut self) {
        while let Some(done) = self.slots.try_join_next() {
            slot_ended(done);
        }
        while let Ok(answer) = self.answers_in.try_recv() {
            self.answers.push(answer);
        }
    }

    /// Queues `effects` and opens slots for them, up to `max_in_flight`.
    fn spawn_effects(&mut self, effects: Vec<Job>) {
        let waiting = {
            let mut q = self.queue();
            q.extend(effects);
            q.len()
        };
        let open = self
            .config
            .max_in_flight
            .max(1)
            .saturating_sub(self.slots.len())
            .min(waiting);
        for _ in 0..open {
            let queued = self.queued.clone();
            let executor = self.executor.clone();
            let answered = self.answered.clone();
            let ahead = self.ahead.clone();
            self.slots.spawn(async move {
                loop {
                    // The semaphore is never closed.
                    let Ok(room) = ahead.acquire().await else {
                        return;
                    };
                    let next = queued
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some((seq, run, effect)) = next else {
                        return;
                    };
                    // Given back when a batch has committed the answer.
                    room.forget();
                    let answer = executor.perform(&run, effect).await;
                    if answered.send((seq, run, answer)).is_err() {
                        return;
                    }
                    // An executor answering without waiting must not hold the thread.
                    tokio::task::consume_budget().await;
                }
            });
        }
    }

    /// One batch: applies up to `batch_events` ready events, commits everything they produced
    /// in one transaction, then starts performing the new external effects.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] (the batch is not committed and will be retried: its events are
    /// still in the inbox, timers and outbox), [`RuntimeError::Corrupt`].
    pub fn tick(&mut self) -> Result<TickReport> {
        self.collect();
        let now = self.clock.now();
        let limit = self.config.batch_events.max(1);

        // 1. Ready events, grouped by run in arrival order.
        let mut order: Vec<String> = Vec::new();
        let mut per_run: HashMap<String, Vec<(Source, Event)>> = HashMap::new();
        let mut push = |run: String, src: Source, ev: Event| {
            per_run
                .entry(run.clone())
                .or_insert_with(|| {
                    order.push(run);
                    Vec::new()
                })
                .push((src, ev));
        };
        let answers: Vec<Answer> = self.answers.drain(..).collect();
        let taken = answers.len();
        let mut answered_only: Vec<(u64, String)> = Vec::new();
        let mut count = 0;
        for (seq, run, ev) in answers {
            match ev {
                Some(ev) => {
                    push(run, Source::Answer(seq), ev);
                    count += 1;
                }
                None => answered_only.push((seq, run)),
            }
        }
        {
            let r = self.client.store.read()?;
            if count < limit {
                for e in r.inbox(limit - count)? {
                    let ev: Event = serde_json::from_slice(&e.event)
                        .map_err(|err| corrupt(format!("inbox {}/{}", e.run, e.seq), err))?;
                    push(e.run, Source::Inbox(e.seq), ev);
                    count += 1;
                }
            }
            if count < limit {
                for t in r.timers_due(millis(now), limit - count)? {
                    let token =
                        t.id.rsplit('\u{1f}')
                            .next()
                            .and_then(|s| s.parse::<u64>().ok())
                            .ok_or_else(|| corrupt(format!("timer {}", t.id), "bad timer id"))?;
                    push(
                        t.run,
                        Source::Timer(t.id),
                        Event::TimerFired { timer: token },
                    );
                }
            }
        }
        if order.is_empty() && answered_only.is_empty() {
            self.spawn_effects(Vec::new());
            return Ok(TickReport::default());
        }

        // 2. Apply and write, in one transaction. The batch borrows its events: on failure
        //    the answers among them are kept for the next attempt without having been copied.
        match self.commit_batch(&order, &per_run, &answered_only, now) {
            Ok((mut report, new_effects)) => {
                self.ahead.add_permits(taken);
                // 3. Perform.
                report.effects = new_effects.len();
                self.spawn_effects(new_effects);
                Ok(report)
            }
            Err(e) => {
                // Nothing was committed: forget the states changed in memory and keep the
                // answers for the next attempt (their outbox entries are still there).
                self.cache.clear();
                for run in order {
                    for (src, ev) in per_run.remove(&run).unwrap_or_default() {
                        if let Source::Answer(seq) = src {
                            self.answers.push((seq, run.clone(), Some(ev)));
                        }
                    }
                }
                self.answers
                    .extend(answered_only.into_iter().map(|(seq, run)| (seq, run, None)));
                self.hook.aborted();
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn commit_batch(
        &mut self,
        order: &[String],
        per_run: &HashMap<String, Vec<(Source, Event)>>,
        answered_only: &[(u64, String)],
        now: Timestamp,
    ) -> Result<(TickReport, Vec<Job>)> {
        let store = self.client.store.clone();
        let mut w = store.write()?;
        for (seq, _) in answered_only {
            w.remove_outbox(*seq)?;
        }
        let mut report = TickReport::default();
        let mut new_effects = Vec::new();
        let mut finished = Vec::new();
        // Children this batch creates, kept to be cached once it commits: their first events
        // (in the next batches) need not read back and decode the state just written.
        let mut created: HashMap<String, (RunHeader, RunState)> = HashMap::new();
        let mut touched: HashSet<&str> = HashSet::new();
        for run in order {
            let events = per_run.get(run).map_or(&[][..], Vec::as_slice);
            let (header, mut state) = match self.cache.remove(run) {
                Some(c) => c,
                None => match w.run(run)? {
                    Some(rec) => {
                        let s = crate::state::load_state(&*w, &rec)?;
                        (rec.header, s)
                    }
                    None => {
                        // Events for a run that does not exist: consume them.
                        tracing::warn!(run, "events for an unknown run dropped");
                        for (src, _) in events {
                            consume(&mut *w, run, src)?;
                        }
                        continue;
                    }
                },
            };
            let Some(def) = self.client.definition(&state.definition.digest) else {
                tracing::error!(run, digest = %state.definition.digest, "definition not registered");
                self.cache.insert(run.clone(), (header, state));
                continue;
            };
            let mut journal: Vec<(u64, Vec<u8>)> = Vec::new();
            for (src, ev) in events {
                consume(&mut *w, run, src)?;
                let previous = state.status;
                let t = apply(&mut state, &def, ev.clone(), now);
                report.applied += 1;
                let h = header_for(&state, header.project.clone(), header.cluster.clone());
                self.hook.applied(
                    &mut *w,
                    &Applied {
                        header: &h,
                        state: &state,
                        previous,
                        event: ev,
                        journal: &t.journal,
                        now,
                    },
                )?;
                for j in &t.journal {
                    journal.push((j.seq, to_json("journal entry", j)?));
                }
                for e in t.effects {
                    if is_internal(&e) {
                        internal(
                            &mut *w,
                            &self.cache,
                            (run, header.project.as_deref()),
                            &def,
                            e,
                            &mut created,
                            &mut new_effects,
                        )?;
                    } else if !self.hook.perform(&mut *w, &h, &e, now)? {
                        let seq = w.push_outbox(run, &to_json("effect", &e)?)?;
                        new_effects.push((seq, run.clone(), e));
                    }
                }
            }
            let was_terminal = header.terminal;
            let header = header_for(&state, header.project, header.cluster);
            if was_terminal
                && !header.terminal
                && let Some(c) = &header.cluster
                && let Some(holder) = w.lock_cluster(c, run)?
            {
                // A re-driven run takes its cluster back; another run got there first.
                tracing::warn!(run, cluster = %c, holder, "re-driven run cannot re-take its cluster lock");
            }
            crate::state::write_state(&mut *w, &header, &mut state)?;
            let entries: Vec<(u64, &[u8])> =
                journal.iter().map(|(s, b)| (*s, b.as_slice())).collect();
            w.append_journal(run, &entries)?;
            if header.terminal {
                if let Some(c) = &header.cluster {
                    w.unlock_cluster(c, run)?;
                }
                finished.push(run);
            } else {
                touched.insert(run.as_str());
                self.cache.insert(run.clone(), (header, state));
            }
            report.runs += 1;
        }
        w.commit()?;
        self.hook.committed();
        self.commits.send_modify(|n| *n += 1);
        for run in finished {
            self.cache.remove(run);
        }
        if self.cache.len() + created.len() > self.config.cached_runs {
            self.cache.retain(|id, _| touched.contains(id.as_str()));
        }
        self.cache.extend(created);
        Ok((report, new_effects))
    }
}

/// Performs a timer, child or signal effect of `run` (with its project) inside the batch's
/// transaction.
#[allow(clippy::too_many_arguments)]
fn internal(
    w: &mut dyn WriteOps,
    cache: &HashMap<String, (RunHeader, RunState)>,
    (run, project): (&str, Option<&str>),
    def: &Definition,
    effect: Effect,
    created: &mut HashMap<String, (RunHeader, RunState)>,
    external: &mut Vec<Job>,
) -> Result<()> {
    match effect {
        Effect::SetTimer { timer, at } => w.set_timer(&timer_id(run, timer), run, millis(at))?,
        Effect::CancelTimer { timer } => {
            w.remove_timer(&timer_id(run, timer))?;
        }
        Effect::StartChild(spec) => {
            let exists = created.contains_key(&spec.run)
                || cache.contains_key(&spec.run)
                || w.run(&spec.run)?.is_some();
            if !exists {
                let cluster = spec.item.name.clone();
                if let Some(holder) = w.lock_cluster(&cluster, &spec.run)? {
                    // Another run works on this cluster: the child fails without starting.
                    let done = Event::ChildCompleted {
                        item: spec.item.name.clone(),
                        child: spec.run.clone(),
                        outcome: ChildOutcome::Failed {
                            error: RunError {
                                kind: "cluster-busy".into(),
                                message: format!("cluster {cluster} is busy with run {holder}"),
                                step: None,
                            },
                        },
                    };
                    w.push_inbox(run, &to_json("event", &done)?)?;
                    return Ok(());
                }
                let child = RunState::for_child(&spec, def);
                let header = header_for(&child, project.map(str::to_owned), Some(cluster));
                w.put_run(&header, &to_json("run state", &child)?)?;
                created.insert(spec.run.clone(), (header, child));
            }
            let started = Event::Started {
                inputs: spec.inputs,
                subject: Some(spec.item),
            };
            w.push_inbox(&spec.run, &to_json("event", &started)?)?;
        }
        Effect::SignalChild {
            child,
            signal,
            by,
            reason,
        } => {
            let ev = Event::Signal { signal, by, reason };
            w.push_inbox(&child, &to_json("event", &ev)?)?;
        }
        Effect::NotifyParent {
            parent,
            item,
            child,
            outcome,
        } => {
            let ev = Event::ChildCompleted {
                item,
                child,
                outcome,
            };
            w.push_inbox(&parent, &to_json("event", &ev)?)?;
        }
        other => {
            // Not internal; unreachable through `is_internal`, kept total.
            let seq = w.push_outbox(run, &to_json("effect", &other)?)?;
            external.push((seq, run.to_owned(), other));
        }
    }
    Ok(())
}

/// Removes an applied event from where it was stored.
fn consume(w: &mut dyn WriteOps, run: &str, src: &Source) -> Result<()> {
    match src {
        Source::Answer(seq) => w.remove_outbox(*seq)?,
        Source::Inbox(seq) => w.remove_inbox(run, *seq)?,
        Source::Timer(id) => {
            w.remove_timer(id)?;
        }
    }
    Ok(())
}

fn slot_ended(done: std::result::Result<(), tokio::task::JoinError>) {
    // A panicking executor leaves its effect in the outbox: performed again on restart.
    if let Err(e) = done {
        tracing::error!(error = %e, "effect task failed");
    }
}

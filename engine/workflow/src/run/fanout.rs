//! Fan-out bookkeeping: items, waves, live counts, limits and the failure budget.

use super::{Item, RunId, Token};
use crate::definition::{Limit, OnFailure, Wave};
use crate::duration::Duration;
use fleetplane_domain::LabelSelector;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A concurrency limit or failure budget as it stands while a fan-out runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LimitSetting {
    /// No limit (concurrency) or no budget check (failures).
    Unlimited,
    /// An absolute number.
    Count(u32),
    /// A percentage (0–100) of the fan-out's clusters.
    Percent(u8),
}

impl LimitSetting {
    /// The setting of a literal limit (`None` for an expression, which is evaluated first).
    pub fn from_limit(l: &Limit) -> Option<Self> {
        match l {
            Limit::Count(c) => Some(LimitSetting::Count(*c)),
            Limit::Percent(p) => Some(LimitSetting::Percent(*p)),
            Limit::Expr(_) => None,
        }
    }

    /// The number it allows out of `total`: percentages round up for concurrency (at least 1)
    /// and down for budgets; `None` is unlimited.
    pub fn resolve(self, total: usize, round_up: bool) -> Option<usize> {
        match self {
            LimitSetting::Unlimited => None,
            LimitSetting::Count(c) => Some(c as usize),
            LimitSetting::Percent(p) => Limit::Percent(p).resolve(total, round_up),
        }
    }

    /// Whether the setting makes sense as a concurrency limit (not zero, percent ≤ 100).
    pub fn valid_for_concurrency(self) -> bool {
        match self {
            LimitSetting::Unlimited => true,
            LimitSetting::Count(c) => c > 0,
            LimitSetting::Percent(p) => (1..=100).contains(&p),
        }
    }

    /// Whether the setting makes sense as a failure budget.
    pub fn valid_for_budget(self) -> bool {
        !matches!(self, LimitSetting::Percent(p) if p > 100)
    }
}

/// Live counts of a wave (or of the whole fan-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WaveCounts {
    /// Clusters in all.
    pub total: usize,
    /// Not started yet.
    pub pending: usize,
    /// Child run in progress.
    pub running: usize,
    /// Child run succeeded.
    pub succeeded: usize,
    /// Child run failed (or was cancelled).
    pub failed: usize,
    /// Skipped by a skip rule.
    pub skipped: usize,
}

impl WaveCounts {
    fn slot(&mut self, s: &ItemStatus) -> &mut usize {
        match s {
            ItemStatus::Pending => &mut self.pending,
            ItemStatus::Running => &mut self.running,
            ItemStatus::Succeeded => &mut self.succeeded,
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::Skipped => &mut self.skipped,
        }
    }
}

/// A cluster's state in a fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemStatus {
    /// Not started.
    Pending,
    /// Its child run is in progress.
    Running,
    /// Its child run succeeded.
    Succeeded,
    /// Its child run failed or was cancelled.
    Failed,
    /// A skip rule matched.
    Skipped,
}

/// One cluster of a fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemState {
    /// The cluster's name.
    pub name: String,
    /// Index of its wave.
    pub wave: usize,
    /// Its state.
    pub status: ItemStatus,
    /// Its child run, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<RunId>,
    /// The skip reason or the last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many times it was re-driven.
    #[serde(default)]
    pub redrives: u32,
    /// The item as resolved, kept until its child starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
}

/// The items of a fan-out, sorted by name.
///
/// A 100,000-cluster fan-out's items are ~11 MB of JSON: rewriting them with the run's state on
/// every batch dominated a fleet rollout. So the runtime stores them as rows of their own and
/// rewrites only the rows a batch changed: every change goes through [`Items::get_mut`], which
/// remembers the index ([`Items::take_changes`]). Once stored apart, the run state serializes
/// them as `{"stored": n}` (the rows are in the store, see [`Items::attach`]); before that, and
/// in every state a run's own code builds, as a plain list.
#[derive(Debug, Clone, Default)]
pub struct Items {
    rows: Vec<ItemState>,
    /// `Some(n)`: `n` rows live in the store (and `rows` is empty until attached).
    stored: Option<usize>,
    /// Rows changed since the last [`Items::take_changes`].
    changed: std::collections::BTreeSet<u32>,
}

/// What a batch must write of a fan-out's items.
#[derive(Debug, PartialEq)]
pub enum ItemChanges<'a> {
    /// Every row (the items were never stored apart).
    All(&'a [ItemState]),
    /// These rows, by index.
    Some(Vec<(u32, &'a ItemState)>),
}

impl PartialEq for Items {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows && self.stored == other.stored
    }
}

impl Items {
    /// The number of items (stored ones included).
    pub fn len(&self) -> usize {
        self.stored.unwrap_or(self.rows.len()).max(self.rows.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items, in name order (empty while stored rows are not attached).
    pub fn iter(&self) -> std::slice::Iter<'_, ItemState> {
        self.rows.iter()
    }

    /// Item `i` for changing it (recorded for the next write).
    ///
    /// # Panics
    /// When `i` is out of range, as indexing does.
    pub fn get_mut(&mut self, i: usize) -> &mut ItemState {
        self.changed.insert(i as u32);
        &mut self.rows[i]
    }

    /// The index of the item named `name` (the rows are sorted by name).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.rows
            .binary_search_by(|i| i.name.as_str().cmp(name))
            .ok()
    }

    /// How many rows live in the store and are not attached yet (`None`: none are).
    pub fn detached(&self) -> Option<usize> {
        self.stored.filter(|_| self.rows.is_empty())
    }

    /// Puts the stored rows back (read from the store after the state).
    ///
    /// # Errors
    /// When their number is not the one the state recorded.
    pub fn attach(&mut self, rows: Vec<ItemState>) -> Result<(), String> {
        match self.stored {
            Some(n) if n == rows.len() => {
                self.rows = rows;
                Ok(())
            }
            other => Err(format!(
                "{} fan-out items read, {other:?} stored",
                rows.len()
            )),
        }
    }

    /// What to write since the last call: every row the first time, then the changed ones.
    /// From then on the items serialize as stored (`{"stored": n}`).
    pub fn take_changes(&mut self) -> ItemChanges<'_> {
        let changed = std::mem::take(&mut self.changed);
        if self.stored.replace(self.rows.len()).is_none() {
            return ItemChanges::All(&self.rows);
        }
        ItemChanges::Some(
            changed
                .into_iter()
                .filter_map(|i| self.rows.get(i as usize).map(|r| (i, r)))
                .collect(),
        )
    }
}

impl std::ops::Index<usize> for Items {
    type Output = ItemState;
    fn index(&self, i: usize) -> &ItemState {
        &self.rows[i]
    }
}

impl From<Vec<ItemState>> for Items {
    fn from(rows: Vec<ItemState>) -> Self {
        Self {
            rows,
            stored: None,
            changed: std::collections::BTreeSet::new(),
        }
    }
}

impl Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self.stored {
            Some(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("stored", &n)?;
                m.end()
            }
            None => self.rows.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Rows(Vec<ItemState>),
            Stored { stored: usize },
        }
        Ok(match Form::deserialize(d)? {
            Form::Rows(rows) => rows.into(),
            Form::Stored { stored } => Self {
                rows: Vec::new(),
                stored: Some(stored),
                changed: std::collections::BTreeSet::new(),
            },
        })
    }
}

/// One wave of a fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveState {
    /// Its name.
    pub name: String,
    /// Indices of its items (into [`FanoutState::items`]), in name order.
    pub members: Vec<u32>,
    /// Its own concurrency limit.
    pub max_concurrency: LimitSetting,
    /// Soak after it completes.
    pub soak: Duration,
    /// Live counts.
    pub counts: WaveCounts,
}

/// Why a fan-out stopped starting children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Halt {
    /// Too many failures.
    BudgetExhausted,
    /// A rollback was requested.
    Rollback,
}

/// The bookkeeping of a running fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutState {
    /// Every cluster, sorted by name.
    pub items: Items,
    /// Waves in order.
    pub waves: Vec<WaveState>,
    /// Index of the wave being run.
    pub current: usize,
    /// Position in the current wave's members of the next item to consider.
    pub cursor: usize,
    /// Whether the current wave's start was recorded.
    pub wave_started: bool,
    /// Failed items re-queued by a re-drive, started before new ones.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub requeued: VecDeque<u32>,
    /// Fan-out-wide concurrency limit (of all clusters).
    pub max_concurrency: LimitSetting,
    /// Failure budget (of all clusters).
    pub max_failures: LimitSetting,
    /// What an exhausted budget does.
    pub on_failure: OnFailure,
    /// Failures forgiven by a resume (the budget counts failures beyond these).
    pub accepted_failures: usize,
    /// Why starting stopped, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<Halt>,
    /// Whole-fan-out counts.
    pub totals: WaveCounts,
    /// The timer that starts more children when one transition could not start them all
    /// ([`START_PER_TRANSITION`]), while it is armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Token>,
}

/// The most wave members one transition considers, hence the most children it starts: an
/// unlimited fan-out over a large fleet starts them in steps of this many, one transition each
/// (docs/workflows.md, "Starting children"), so that a batch's transaction, and the memory it
/// holds until its commit, stay bounded.
pub const START_PER_TRANSITION: usize = 1_000;

/// The name of the wave of clusters no wave selects.
pub const REST_WAVE: &str = "rest";

impl FanoutState {
    /// Plans a fan-out: sorts and de-duplicates items, assigns each to the first wave whose
    /// selector matches (clusters no wave selects form a last wave named `rest`, as does every
    /// cluster when there are no waves), and marks skipped items (`skip` gives a reason or not).
    pub fn plan(
        mut items: Vec<Item>,
        waves: &[Wave],
        max_concurrency: LimitSetting,
        max_failures: LimitSetting,
        on_failure: OnFailure,
        mut skip: impl FnMut(&Item) -> Option<String>,
    ) -> Self {
        items.sort_by(|a, b| a.name.cmp(&b.name));
        items.dedup_by(|a, b| a.name == b.name);
        let selectors: Vec<LabelSelector> = waves
            .iter()
            .map(|w| LabelSelector::match_labels(&w.selector.match_labels))
            .collect();
        let mut wave_states: Vec<WaveState> = waves
            .iter()
            .map(|w| WaveState {
                name: w.name.clone(),
                members: Vec::new(),
                max_concurrency: w
                    .max_concurrency
                    .as_ref()
                    .and_then(LimitSetting::from_limit)
                    .unwrap_or(LimitSetting::Unlimited),
                soak: Duration::from_mins(u64::from(w.soak_minutes.unwrap_or(0))),
                counts: WaveCounts::default(),
            })
            .collect();
        let rest = wave_states.len();
        wave_states.push(WaveState {
            name: REST_WAVE.to_owned(),
            members: Vec::new(),
            max_concurrency: LimitSetting::Unlimited,
            soak: Duration::default(),
            counts: WaveCounts::default(),
        });
        let mut states = Vec::with_capacity(items.len());
        let mut totals = WaveCounts::default();
        for (i, item) in items.into_iter().enumerate() {
            let wave = selectors
                .iter()
                .position(|s| s.matches(&item.labels))
                .unwrap_or(rest);
            let reason = skip(&item);
            let status = if reason.is_some() {
                ItemStatus::Skipped
            } else {
                ItemStatus::Pending
            };
            let w = &mut wave_states[wave];
            w.members.push(i as u32);
            w.counts.total += 1;
            *w.counts.slot(&status) += 1;
            totals.total += 1;
            *totals.slot(&status) += 1;
            states.push(ItemState {
                name: item.name.clone(),
                wave,
                status,
                child: None,
                detail: reason,
                redrives: 0,
                item: (status == ItemStatus::Pending).then_some(item),
            });
        }
        // An empty `rest` wave is noise in every view.
        if wave_states.last().is_some_and(|w| w.members.is_empty()) && wave_states.len() > 1 {
            wave_states.pop();
        }
        Self {
            items: states.into(),
            waves: wave_states,
            current: 0,
            cursor: 0,
            wave_started: false,
            requeued: VecDeque::new(),
            max_concurrency,
            max_failures,
            on_failure,
            accepted_failures: 0,
            halt: None,
            totals,
            continuation: None,
        }
    }

    /// The index of the item named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.items.find(name)
    }

    /// Moves item `i` to `status`, keeping every count right.
    pub fn set_status(&mut self, i: usize, status: ItemStatus) {
        let old = self.items[i].status;
        let w = self.items[i].wave;
        *self.waves[w].counts.slot(&old) -= 1;
        *self.waves[w].counts.slot(&status) += 1;
        *self.totals.slot(&old) -= 1;
        *self.totals.slot(&status) += 1;
        self.items.get_mut(i).status = status;
    }

    /// How many children may run now (`None`: no limit): the smaller of the fan-out's limit
    /// (over all clusters) and the current wave's (over the wave).
    pub fn concurrency_limit(&self) -> Option<usize> {
        let global = self.max_concurrency.resolve(self.totals.total, true);
        let wave = self
            .waves
            .get(self.current)
            .and_then(|w| w.max_concurrency.resolve(w.counts.total, true));
        match (global, wave) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Failures allowed before the budget is exhausted (`None`: never).
    pub fn failures_allowed(&self) -> Option<usize> {
        self.max_failures.resolve(self.totals.total, false)
    }

    /// Whether failures beyond those accepted exceed the budget.
    pub fn budget_exhausted(&self) -> bool {
        self.failures_allowed().is_some_and(|allowed| {
            self.totals.failed.saturating_sub(self.accepted_failures) > allowed
        })
    }

    /// Whether every item of the current wave has finished.
    pub fn current_wave_done(&self) -> bool {
        self.waves
            .get(self.current)
            .is_none_or(|w| w.counts.pending == 0 && w.counts.running == 0)
    }

    /// Whether nothing is left to start or wait for in any wave.
    pub fn all_done(&self) -> bool {
        self.totals.pending == 0 && self.totals.running == 0 && self.requeued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::Selector;

    fn item(name: &str, ring: &str) -> Item {
        Item {
            name: name.into(),
            labels: [("ring".to_owned(), ring.to_owned())].into(),
            facts: Default::default(),
        }
    }

    #[test]
    fn plan_assigns_waves_sorts_dedups_and_skips() {
        let waves = vec![Wave {
            name: "canary".into(),
            selector: Selector {
                match_labels: [("ring".to_owned(), "canary".to_owned())].into(),
            },
            max_concurrency: Some(Limit::Count(1)),
            soak_minutes: Some(10),
        }];
        let items = vec![
            item("c", "main"),
            item("a", "canary"),
            item("b", "main"),
            item("a", "x"),
        ];
        let f = FanoutState::plan(
            items,
            &waves,
            LimitSetting::Percent(50),
            LimitSetting::Count(0),
            OnFailure::Pause,
            |i| (i.name == "c").then(|| "pending variables".to_owned()),
        );
        let names: Vec<_> = f
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.wave, i.status))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a", 0, ItemStatus::Pending),
                ("b", 1, ItemStatus::Pending),
                ("c", 1, ItemStatus::Skipped)
            ]
        );
        assert_eq!(f.waves[1].name, REST_WAVE);
        assert_eq!(f.waves[0].soak, Duration::from_mins(10));
        assert_eq!(
            f.totals,
            WaveCounts {
                total: 3,
                pending: 2,
                skipped: 1,
                ..Default::default()
            }
        );
        assert_eq!(f.concurrency_limit(), Some(1)); // min(50% of 3 → 2, wave's 1)
        assert_eq!(f.find("b"), Some(1));
        assert!(!f.budget_exhausted());
    }
    fn row(name: &str) -> ItemState {
        ItemState {
            name: name.into(),
            wave: 0,
            status: ItemStatus::Pending,
            child: None,
            detail: None,
            redrives: 0,
            item: None,
        }
    }

    #[test]
    fn items_are_written_whole_once_then_only_what_changed() {
        let mut items: Items = vec![row("a"), row("b"), row("c")].into();
        assert_eq!(serde_json::to_value(&items).unwrap()[1]["name"], "b");
        items.get_mut(2).detail = Some("x".into());
        match items.take_changes() {
            ItemChanges::All(rows) => assert_eq!(rows.len(), 3),
            other => panic!("first write is every row, got {other:?}"),
        }
        assert_eq!(items.take_changes(), ItemChanges::Some(vec![]));
        items.get_mut(1).status = ItemStatus::Running;
        items.get_mut(1).redrives = 1;
        let changed = match items.take_changes() {
            ItemChanges::Some(rows) => rows
                .into_iter()
                .map(|(i, r)| (i, r.status))
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(changed, vec![(1, ItemStatus::Running)]);
        // Stored apart: the state carries the count; the rows come back through `attach`.
        let json = serde_json::to_value(&items).unwrap();
        assert_eq!(json, serde_json::json!({"stored": 3}));
        let mut back: Items = serde_json::from_value(json).unwrap();
        assert_eq!(back.detached(), Some(3));
        assert_eq!(back.len(), 3);
        assert!(
            back.attach(vec![row("a")]).is_err(),
            "a missing row is an error"
        );
        back.attach(items.iter().cloned().collect()).unwrap();
        assert_eq!(back, items);
        assert_eq!(back.detached(), None);
        assert_eq!(back.find("c"), Some(2));
        assert_eq!(back.take_changes(), ItemChanges::Some(vec![]));
    }
}

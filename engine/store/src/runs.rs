//! Records of the workflow runtime (docs/runtime.md): runs, journals, the outbox, timers,
//! inboxes and cluster locks. The store keeps states, entries, effects and events as opaque
//! bytes (JSON written by `fleetplane-workflow`); it only understands the header it indexes.

use crate::{Result, StoreError};
use serde::{Deserialize, Serialize};

/// The run record format this build writes.
pub const RUN_RECORD_FORMAT: u8 = 1;

/// What the store indexes about a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunHeader {
    /// The run id.
    pub id: String,
    /// Its status as the API spells it (`Running`).
    pub status: String,
    /// Whether the status is final (such runs are never loaded on recovery).
    pub terminal: bool,
    /// The parent run, for children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The definition's name.
    pub definition: String,
    /// The project the run belongs to (`None`: tenant scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The cluster lock the run holds until it ends, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// A stored run: its header and its state bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The indexed part.
    pub header: RunHeader,
    /// The run state (JSON).
    pub state: Vec<u8>,
}

impl RunRecord {
    pub(crate) fn encode(header: &RunHeader, state: &[u8]) -> Result<Vec<u8>> {
        let h = serde_json::to_vec(header).map_err(|e| StoreError::Backend(e.to_string()))?;
        let len =
            u32::try_from(h.len()).map_err(|_| StoreError::Backend("header too big".into()))?;
        let mut out = Vec::with_capacity(5 + h.len() + state.len());
        out.push(RUN_RECORD_FORMAT);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(state);
        Ok(out)
    }

    fn split<'a>(key: &str, bytes: &'a [u8]) -> Result<(RunHeader, &'a [u8])> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: format!("run/{key}"),
            reason,
        };
        match bytes.first() {
            Some(1) => {
                let len = bytes
                    .get(1..5)
                    .ok_or_else(|| corrupt("truncated header".into()))?;
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let h = bytes
                    .get(5..5 + len)
                    .ok_or_else(|| corrupt("truncated header".into()))?;
                let header = serde_json::from_slice(h).map_err(|e| corrupt(e.to_string()))?;
                Ok((header, &bytes[5 + len..]))
            }
            Some(f) => Err(corrupt(format!("unknown run record format {f}"))),
            None => Err(corrupt("empty record".into())),
        }
    }

    pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<Self> {
        let (header, state) = Self::split(key, bytes)?;
        Ok(Self {
            header,
            state: state.to_vec(),
        })
    }

    pub(crate) fn decode_header(key: &str, bytes: &[u8]) -> Result<RunHeader> {
        Ok(Self::split(key, bytes)?.0)
    }
}

/// A dimension runs are listed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunIndex {
    /// Runs with this status (`Running`).
    Status(String),
    /// Children of this run.
    Parent(String),
    /// Runs of this definition (by name).
    Definition(String),
}

impl RunIndex {
    pub(crate) fn prefix(&self) -> String {
        let sep = crate::key::SEP;
        match self {
            RunIndex::Status(s) => format!("status{sep}{s}{sep}"),
            RunIndex::Parent(p) => format!("parent{sep}{p}{sep}"),
            RunIndex::Definition(d) => format!("definition{sep}{d}{sep}"),
        }
    }

    pub(crate) fn of(h: &RunHeader) -> Vec<RunIndex> {
        let mut v = vec![
            RunIndex::Status(h.status.clone()),
            RunIndex::Definition(h.definition.clone()),
        ];
        if let Some(p) = &h.parent {
            v.push(RunIndex::Parent(p.clone()));
        }
        v
    }
}

/// An effect waiting to be performed (or re-performed after a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Position in the outbox (increasing).
    pub seq: u64,
    /// The run that produced it.
    pub run: String,
    /// The effect (JSON).
    pub effect: Vec<u8>,
}

impl OutboxEntry {
    pub(crate) fn encode(run: &str, effect: &[u8]) -> Result<Vec<u8>> {
        let len =
            u32::try_from(run.len()).map_err(|_| StoreError::Backend("run id too long".into()))?;
        let mut out = Vec::with_capacity(4 + run.len() + effect.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(run.as_bytes());
        out.extend_from_slice(effect);
        Ok(out)
    }

    pub(crate) fn decode(seq: u64, bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: format!("outbox/{seq}"),
            reason: reason.to_owned(),
        };
        let len = bytes.get(..4).ok_or_else(|| corrupt("truncated"))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let run = bytes.get(4..4 + len).ok_or_else(|| corrupt("truncated"))?;
        let run = std::str::from_utf8(run).map_err(|_| corrupt("run id not UTF-8"))?;
        Ok(Self {
            seq,
            run: run.to_owned(),
            effect: bytes[4 + len..].to_vec(),
        })
    }
}

/// A durable timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerEntry {
    /// When it fires (Unix milliseconds).
    pub at_ms: u64,
    /// Its id (unique in the store; the runtime uses `run ␟ token`).
    pub id: String,
    /// The run it belongs to.
    pub run: String,
}

/// An event waiting in a run's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The run.
    pub run: String,
    /// Position in the run's inbox (increasing).
    pub seq: u64,
    /// The event (JSON).
    pub event: Vec<u8>,
}

//! How a run's state is stored: the state's JSON in its run record, and the items of an active
//! fan-out as rows of their own (`fleetplane_workflow::run::Items`), rewritten only when a
//! batch changes them.

use crate::{Result, RuntimeError};
use fleetplane_store::{ReadOps, RunHeader, RunRecord, WriteOps};
use fleetplane_workflow::RunState;
use fleetplane_workflow::run::{ItemChanges, ItemState};

fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// The state of stored run `rec`, its fan-out items read back from their rows.
///
/// # Errors
/// [`RuntimeError::Corrupt`] for an undecodable state or item, or a missing item;
/// [`RuntimeError::Store`] on I/O failures.
pub fn load_state(r: &dyn ReadOps, rec: &RunRecord) -> Result<RunState> {
    let id = &rec.header.id;
    let mut state = RunState::from_json(&rec.state).map_err(|e| corrupt(format!("run {id}"), e))?;
    if let Some(items) = state.fanout_items_mut()
        && let Some(n) = items.detached()
    {
        let count = u32::try_from(n).map_err(|e| corrupt(format!("run {id} items"), e))?;
        let rows = r
            .run_items(id, count)?
            .iter()
            .enumerate()
            .map(|(i, b)| {
                serde_json::from_slice::<ItemState>(b)
                    .map_err(|e| corrupt(format!("run {id} item {i}"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        items
            .attach(rows)
            .map_err(|e| corrupt(format!("run {id} items"), e))?;
    }
    Ok(state)
}

/// Writes run `header.id` with `state`: the fan-out items it changed since its last write (all
/// of them the first time) as their own rows, the rest as the run record.
///
/// # Errors
/// [`RuntimeError::Store`] on I/O failures.
pub(crate) fn write_state(
    w: &mut dyn WriteOps,
    header: &RunHeader,
    state: &mut RunState,
) -> Result<()> {
    if let Some(items) = state.fanout_items_mut() {
        let rows: Vec<(u32, Vec<u8>)> = match items.take_changes() {
            ItemChanges::All(rows) => rows
                .iter()
                .enumerate()
                .map(|(i, row)| Ok((u32::try_from(i).unwrap_or(u32::MAX), item_json(row)?)))
                .collect::<Result<_>>()?,
            ItemChanges::Some(rows) => rows
                .into_iter()
                .map(|(i, row)| Ok((i, item_json(row)?)))
                .collect::<Result<_>>()?,
        };
        let refs: Vec<(u32, &[u8])> = rows.iter().map(|(i, b)| (*i, b.as_slice())).collect();
        w.put_run_items(&header.id, &refs)?;
    }
    let bytes = serde_json::to_vec(&*state).map_err(|e| corrupt("run state", e))?;
    w.put_run(header, &bytes)?;
    Ok(())
}

fn item_json(row: &ItemState) -> Result<Vec<u8>> {
    serde_json::to_vec(row).map_err(|e| corrupt("fan-out item", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetplane_store::RedbStorage;
    use fleetplane_workflow::run::ItemStatus;
    use fleetplane_workflow::{Definition, parse_definition};
    use std::sync::Arc;

    const FANOUT: &str = "kind: Workflow\nmetadata: {name: roll, version: 1.0.0}\nspec:\n  purpose: rollout\n  steps:\n    - id: roll\n      fanout:\n        over: template\n        steps:\n          - render: {}\n";

    fn header(state: &RunState) -> RunHeader {
        RunHeader {
            id: state.id.clone(),
            status: "Running".into(),
            terminal: false,
            parent: None,
            definition: "roll".into(),
            project: None,
            cluster: None,
        }
    }

    /// A run whose fan-out over `n` clusters has been planned by the machine.
    fn planned(def: &Definition, n: usize) -> RunState {
        use fleetplane_workflow::{Event, Item, apply};
        let mut s = RunState::new("r1", def);
        let now = jiff::Timestamp::UNIX_EPOCH;
        apply(
            &mut s,
            def,
            Event::Started {
                inputs: serde_json::json!({}),
                subject: None,
            },
            now,
        );
        let items: Vec<Item> = (0..n)
            .map(|i| Item {
                name: format!("c{i:03}"),
                ..Item::default()
            })
            .collect();
        let call = match s.active.as_ref().map(|a| &a.awaiting) {
            Some(fleetplane_workflow::run::Awaiting::Call { call }) => *call,
            other => panic!("the fan-out asks for its items first, not {other:?}"),
        };
        apply(&mut s, def, Event::ItemsResolved { call, items }, now);
        assert_eq!(s.fanout().map(|f| f.items.len()), Some(n));
        s
    }

    #[test]
    fn fan_out_items_round_trip_through_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store: fleetplane_store::Store =
            Arc::new(RedbStorage::open(&dir.path().join("db.redb")).unwrap());
        let def = parse_definition(FANOUT.as_bytes()).unwrap();
        let mut s = planned(&def, 5);

        let mut w = store.write().unwrap();
        write_state(&mut *w, &header(&s), &mut s).unwrap();
        w.commit().unwrap();
        // Only changed rows are written the second time; the reload still sees every change.
        s.fanout_items_mut().unwrap().get_mut(3).detail = Some("changed".into());
        let mut w = store.write().unwrap();
        write_state(&mut *w, &header(&s), &mut s).unwrap();
        w.commit().unwrap();

        let r = store.read().unwrap();
        let rec = r.run("r1").unwrap().unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&rec.state).unwrap();
        assert!(
            !rec.state.windows(6).any(|w| w == b"\"c000\""),
            "the record holds no item: {stored}"
        );
        let back = load_state(&*r, &rec).unwrap();
        assert_eq!(back, s);
        let f = back.fanout().unwrap();
        assert_eq!(f.items[3].detail.as_deref(), Some("changed"));
        assert!(
            f.items
                .iter()
                .all(|i| i.status == ItemStatus::Pending || i.status == ItemStatus::Running)
        );
    }
}

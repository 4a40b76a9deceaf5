//! The workflow runtime's tables (runs, journal, outbox, timers, inbox, cluster locks) against
//! real redb files.

use fleetplane_store::{RedbStorage, RunHeader, RunIndex, Storage, StoreError};

fn open() -> (tempfile::TempDir, std::path::PathBuf, RedbStorage) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetplane.redb");
    let s = RedbStorage::open(&path).unwrap();
    (dir, path, s)
}

fn header(id: &str, status: &str, parent: Option<&str>) -> RunHeader {
    RunHeader {
        id: id.into(),
        status: status.into(),
        terminal: matches!(status, "Succeeded" | "Failed" | "Cancelled"),
        parent: parent.map(Into::into),
        definition: "rollout".into(),
        project: Some("default".into()),
        cluster: None,
    }
}

#[test]
fn runs_are_indexed_by_status_parent_and_definition() {
    let (_d, _p, s) = open();
    let mut w = s.write().unwrap();
    w.put_run(&header("p", "Running", None), b"{\"s\":1}")
        .unwrap();
    for c in ["c1", "c2", "c3"] {
        w.put_run(&header(c, "Pending", Some("p")), b"{}").unwrap();
    }
    w.commit().unwrap();
    let mut w = s.write().unwrap();
    w.put_run(&header("c2", "Succeeded", Some("p")), b"{\"done\":true}")
        .unwrap();
    w.commit().unwrap();

    let r = s.read().unwrap();
    let by = |i: RunIndex| r.runs_by(&i, None, 100).unwrap();
    assert_eq!(by(RunIndex::Status("Pending".into())), ["c1", "c3"]);
    assert_eq!(by(RunIndex::Status("Succeeded".into())), ["c2"]);
    assert_eq!(by(RunIndex::Status("Running".into())), ["p"]);
    assert_eq!(by(RunIndex::Parent("p".into())), ["c1", "c2", "c3"]);
    assert_eq!(by(RunIndex::Definition("rollout".into())).len(), 4);
    assert_eq!(
        r.runs_by(&RunIndex::Parent("p".into()), Some("c1"), 1)
            .unwrap(),
        ["c2"]
    );
    let c2 = r.run("c2").unwrap().unwrap();
    assert_eq!(c2.state, b"{\"done\":true}");
    assert!(c2.header.terminal);
    assert!(r.run("nope").unwrap().is_none());
}

#[test]
fn journals_have_no_gaps() {
    let (_d, _p, s) = open();
    let mut w = s.write().unwrap();
    w.append_journal("a", &[(1, b"x"), (2, b"y")]).unwrap();
    w.append_journal("b", &[(1, b"z")]).unwrap();
    let gap = w.append_journal("a", &[(4, b"w")]).unwrap_err();
    assert!(matches!(gap, StoreError::Corrupt { .. }), "{gap}");
    let dup = w.append_journal("a", &[(3, b"w"), (3, b"w")]).unwrap_err();
    assert!(matches!(dup, StoreError::Corrupt { .. }), "{dup}");
    w.commit().unwrap();
    let r = s.read().unwrap();
    assert_eq!(r.journal_head("a").unwrap(), 2);
    assert_eq!(r.journal_head("c").unwrap(), 0);
    let j = r.journal("a", 1, 10).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!((j[0].seq, j[0].body.as_slice()), (2, &b"y"[..]));
    assert_eq!(r.journal("b", 0, 10).unwrap().len(), 1);
}

#[test]
fn outbox_timers_inbox_and_locks_survive_reopening() {
    let (_d, path, s) = open();
    let mut w = s.write().unwrap();
    let o1 = w.push_outbox("a", b"{\"e\":1}").unwrap();
    let o2 = w.push_outbox("b", b"{\"e\":2}").unwrap();
    w.remove_outbox(o1).unwrap();
    w.set_timer("a/1", "a", 3_000).unwrap();
    w.set_timer("b/1", "b", 1_000).unwrap();
    w.set_timer("a/2", "a", 2_000).unwrap();
    w.set_timer("a/2", "a", 5_000).unwrap(); // moved
    assert!(w.remove_timer("b/1").unwrap());
    assert!(!w.remove_timer("b/1").unwrap());
    w.push_inbox("b", b"e1").unwrap();
    w.push_inbox("a", b"e2").unwrap();
    w.push_inbox("b", b"e3").unwrap();
    assert_eq!(w.lock_cluster("prod", "a").unwrap(), None);
    assert_eq!(w.lock_cluster("prod", "a").unwrap(), None);
    assert_eq!(w.lock_cluster("prod", "b").unwrap(), Some("a".into()));
    assert!(!w.unlock_cluster("prod", "b").unwrap());
    w.commit().unwrap();
    drop(s);

    let s = RedbStorage::open(&path).unwrap();
    let r = s.read().unwrap();
    let out = r.outbox(0, 10).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq, out[0].run.as_str()), (o2, "b"));
    assert_eq!(out[0].effect, b"{\"e\":2}");
    let due: Vec<_> = r.timers_due(4_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id.as_str(), due[0].at_ms), ("a/1", 3_000));
    assert_eq!(r.timers_due(2_999, 10).unwrap().len(), 0);
    assert_eq!(r.next_timer().unwrap().unwrap().id, "a/1");
    let inbox: Vec<_> = r
        .inbox(10)
        .unwrap()
        .into_iter()
        .map(|e| (e.run, e.seq, e.event))
        .collect();
    assert_eq!(
        inbox,
        [
            ("a".to_owned(), 1, b"e2".to_vec()),
            ("b".to_owned(), 1, b"e1".to_vec()),
            ("b".to_owned(), 2, b"e3".to_vec())
        ]
    );
    assert_eq!(r.cluster_lock("prod").unwrap(), Some("a".into()));
    drop(r);

    let mut w = s.write().unwrap();
    // Outbox numbers are never reused, even once the outbox is empty.
    w.remove_outbox(o2).unwrap();
    assert!(w.push_outbox("c", b"{}").unwrap() > o2);
    w.remove_inbox("b", 1).unwrap();
    assert!(w.unlock_cluster("prod", "a").unwrap());
    w.commit().unwrap();
    let r = s.read().unwrap();
    assert_eq!(r.inbox(10).unwrap().len(), 2);
    assert_eq!(r.cluster_lock("prod").unwrap(), None);
}

#[test]
fn fan_out_items_are_rows_read_back_in_index_order() {
    let (_d, _p, s) = open();
    let mut w = s.write().unwrap();
    w.put_run_items("p", &[(0, b"a"), (1, b"b"), (2, b"c")])
        .unwrap();
    w.put_run_items("q", &[(0, b"other run")]).unwrap();
    w.commit().unwrap();
    let mut w = s.write().unwrap();
    w.put_run_items("p", &[(1, b"B")]).unwrap();
    w.commit().unwrap();

    let r = s.read().unwrap();
    assert_eq!(
        r.run_items("p", 3).unwrap(),
        [b"a".to_vec(), b"B".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        r.run_items("p", 2).unwrap().len(),
        2,
        "only the first `count`"
    );
    assert!(r.run_items("p", 0).unwrap().is_empty());
    let missing = r.run_items("p", 4).unwrap_err();
    assert!(missing.to_string().contains("item 3 missing"), "{missing}");
    assert!(r.run_items("nope", 1).is_err());
}

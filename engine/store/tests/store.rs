//! The redb backend against real files in temporary directories.

use fleetplane_store::tables::kinds;
use fleetplane_store::{
    ListQuery, Log, ObjectKey, Precondition, ReadExt, RedbStorage, Reference, Scope, Storage,
    StoreError, WriteExt,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn open() -> (tempfile::TempDir, RedbStorage) {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(&dir.path().join("fleetplane.redb")).unwrap();
    (dir, s)
}

fn cluster(name: &str) -> ObjectKey {
    ObjectKey::project("default", kinds::CLUSTER, name)
}

#[test]
fn compare_and_swap_and_preconditions() {
    let (_d, s) = open();
    let k = cluster("dev");
    let mut w = s.write().unwrap();
    let rv1 = w
        .put_as(
            &k,
            &serde_json::json!({"v": 1}),
            Precondition::MustNotExist,
            &[],
        )
        .unwrap();
    w.commit().unwrap();

    let mut w = s.write().unwrap();
    let err = w
        .put(&k, b"{}", Precondition::MustNotExist, &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)));
    let rv2 = w
        .put(&k, b"{\"v\":2}", Precondition::Version(rv1), &[])
        .unwrap();
    assert!(rv2 > rv1);
    let err = w
        .put(&k, b"{}", Precondition::Version(rv1), &[])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionMismatch { expected, found, .. } if expected == rv1 && found == rv2)
    );
    let err = w
        .put(&cluster("nope"), b"{}", Precondition::MustExist, &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
    w.commit().unwrap();

    let r = s.read().unwrap();
    let (v, rv) = r.get_as::<serde_json::Value>(&k).unwrap().unwrap();
    assert_eq!(v["v"], 2);
    assert_eq!(rv, rv2);
}

#[test]
fn uncommitted_writes_vanish() {
    let (_d, s) = open();
    let mut w = s.write().unwrap();
    w.put(&cluster("a"), b"{}", Precondition::Any, &[]).unwrap();
    w.append(Log::Audit, b"{}").unwrap();
    drop(w);
    let r = s.read().unwrap();
    assert!(r.get(&cluster("a")).unwrap().is_none());
    assert_eq!(r.log_head(Log::Audit).unwrap(), 0);
}

#[test]
fn lists_page_in_name_order_within_kind_and_scope() {
    let (_d, s) = open();
    let mut w = s.write().unwrap();
    for n in ["c", "a", "b", "d"] {
        w.put(&cluster(n), b"{}", Precondition::Any, &[]).unwrap();
    }
    w.put(
        &ObjectKey::project("other", kinds::CLUSTER, "x"),
        b"{}",
        Precondition::Any,
        &[],
    )
    .unwrap();
    w.put(
        &ObjectKey::project("default", kinds::CLOUD_ACCOUNT, "x"),
        b"{}",
        Precondition::Any,
        &[],
    )
    .unwrap();
    w.commit().unwrap();
    let r = s.read().unwrap();
    let mut q = ListQuery {
        scope: Scope::Project("default".into()),
        kind: kinds::CLUSTER,
        name_prefix: String::new(),
        after: None,
        limit: 3,
    };
    let p1 = r.list(&q).unwrap();
    let names: Vec<_> = p1.items.iter().map(|r| r.key.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(p1.next.as_deref(), Some("c"));
    q.after = p1.next;
    let p2 = r.list(&q).unwrap();
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].key.name, "d");
    assert!(p2.next.is_none());
}

#[test]
fn references_follow_rewrites_and_deletes() {
    let (_d, s) = open();
    let uses = |t: &str| Reference {
        relation: "uses-profile-version",
        target: t.to_owned(),
    };
    let mut w = s.write().unwrap();
    w.put(&cluster("a"), b"{}", Precondition::Any, &[uses("p/1.0.0")])
        .unwrap();
    w.put(
        &cluster("b"),
        b"{}",
        Precondition::Any,
        &[uses("p/1.0.0"), uses("q/1")],
    )
    .unwrap();
    w.commit().unwrap();
    assert_eq!(
        s.read()
            .unwrap()
            .referrers(&uses("p/1.0.0"), 10)
            .unwrap()
            .len(),
        2
    );

    let mut w = s.write().unwrap();
    w.put(&cluster("a"), b"{}", Precondition::Any, &[uses("p/1.1.0")])
        .unwrap();
    w.delete(&cluster("b"), Precondition::Any).unwrap();
    w.commit().unwrap();
    let r = s.read().unwrap();
    assert!(!r.is_referenced(&uses("p/1.0.0")).unwrap());
    assert!(!r.is_referenced(&uses("q/1")).unwrap());
    assert_eq!(
        r.referrers(&uses("p/1.1.0"), 10).unwrap(),
        vec![cluster("a")]
    );
    // a target that is a prefix of another must not match it
    assert!(!r.is_referenced(&uses("p/1.1")).unwrap());
    drop(r);

    // Rewriting with the same references (in any order, repeated) keeps them; an empty list
    // drops them.
    let mut w = s.write().unwrap();
    w.put(
        &cluster("a"),
        b"{}",
        Precondition::Any,
        &[uses("q/2"), uses("p/1.1.0"), uses("q/2")],
    )
    .unwrap();
    w.put(
        &cluster("a"),
        b"{}",
        Precondition::Any,
        &[uses("p/1.1.0"), uses("q/2")],
    )
    .unwrap();
    w.commit().unwrap();
    let r = s.read().unwrap();
    for t in ["p/1.1.0", "q/2"] {
        assert_eq!(
            r.referrers(&uses(t), 10).unwrap(),
            vec![cluster("a")],
            "{t}"
        );
    }
    drop(r);
    let mut w = s.write().unwrap();
    w.put(&cluster("a"), b"{}", Precondition::Any, &[]).unwrap();
    w.commit().unwrap();
    let r = s.read().unwrap();
    assert!(!r.is_referenced(&uses("p/1.1.0")).unwrap());
    assert!(!r.is_referenced(&uses("q/2")).unwrap());
}

#[test]
fn logs_append_read_and_trim() {
    let (_d, s) = open();
    let mut w = s.write().unwrap();
    for i in 0..10 {
        w.append(Log::Events, format!("{i}").as_bytes()).unwrap();
    }
    w.trim(Log::Events, 4).unwrap();
    w.commit().unwrap();
    let r = s.read().unwrap();
    assert_eq!(r.log_head(Log::Events).unwrap(), 10);
    let after: Vec<u64> = r
        .log_after(Log::Events, 0, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(after, [7, 8, 9, 10]);
    let before: Vec<u64> = r
        .log_before(Log::Events, Some(10), 2)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(before, [9, 8]);
}

#[test]
fn committed_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetplane.redb");
    let rv = {
        let s = RedbStorage::open(&path).unwrap();
        let mut w = s.write().unwrap();
        let rv = w
            .put(&cluster("a"), b"{\"x\":1}", Precondition::Any, &[])
            .unwrap();
        w.commit().unwrap();
        rv
    };
    let s = RedbStorage::open(&path).unwrap();
    let rec = s.read().unwrap().get(&cluster("a")).unwrap().unwrap();
    assert_eq!(rec.resource_version, rv);
    // the revision counter continues after a reopen
    let mut w = s.write().unwrap();
    assert!(w.put(&cluster("b"), b"{}", Precondition::Any, &[]).unwrap() > rv);
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Option<bool>),
    Delete(u8),
    Commit,
    Abort,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, proptest::option::of(any::<bool>())).prop_map(|(k, p)| Op::Put(k, p)),
        (0u8..6).prop_map(Op::Delete),
        Just(Op::Commit),
        Just(Op::Abort),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The store agrees with a map-of-committed-values model under random puts, deletes,
    /// commits and aborts.
    #[test]
    fn agrees_with_reference_model(ops in proptest::collection::vec(op(), 1..40)) {
        let (_d, s) = open();
        let mut committed: BTreeMap<u8, u64> = BTreeMap::new();
        let mut pending = committed.clone();
        let mut w = s.write().unwrap();
        for o in ops {
            match o {
                Op::Put(k, must_exist) => {
                    let pre = match must_exist {
                        None => Precondition::Any,
                        Some(true) => Precondition::MustExist,
                        Some(false) => Precondition::MustNotExist,
                    };
                    let res = w.put(&cluster(&format!("c{k}")), b"{}", pre, &[]);
                    let exists = pending.contains_key(&k);
                    let ok = match pre { Precondition::MustExist => exists, Precondition::MustNotExist => !exists, _ => true };
                    prop_assert_eq!(res.is_ok(), ok);
                    if let Ok(rv) = res { pending.insert(k, rv); }
                }
                Op::Delete(k) => {
                    let res = w.delete(&cluster(&format!("c{k}")), Precondition::Any);
                    prop_assert_eq!(res.is_ok(), pending.remove(&k).is_some());
                }
                Op::Commit => { w.commit().unwrap(); committed = pending.clone(); w = s.write().unwrap(); }
                Op::Abort => { drop(w); pending = committed.clone(); w = s.write().unwrap(); }
            }
        }
        drop(w);
        let r = s.read().unwrap();
        for k in 0u8..6 {
            let got = r.get(&cluster(&format!("c{k}"))).unwrap().map(|r| r.resource_version);
            prop_assert_eq!(got, committed.get(&k).copied());
        }
    }
}

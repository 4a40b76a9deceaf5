//! Parses an arbitrary label selector and matches it against arbitrary labels. Must never panic
//! or hang.
//!
//! Input: UTF-8; the first line is the selector, each further line a label `key=value`.
#![no_main]

use fleetplane_domain::{LabelSelector, Labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut lines = text.split('\n');
    let selector = lines.next().unwrap_or_default();
    let labels: Labels = lines
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    if let Ok(sel) = LabelSelector::parse("f", selector) {
        let _ = sel.matches(&labels);
        let _ = sel.matches(&Labels::new());
    }
    // A selector built from labels matches those labels.
    assert!(LabelSelector::match_labels(&labels).matches(&labels));
});

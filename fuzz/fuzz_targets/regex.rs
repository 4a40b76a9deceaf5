//! Compiles an arbitrary variable pattern and matches it against a sample. Must never panic or
//! hang (compilation is bounded by size and nesting limits; matching is linear).
//!
//! Input: UTF-8 `pattern` or `pattern\0sample`.
#![no_main]

use fleetplane_domain::profile::compile_regex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let (pattern, sample) = text
        .split_once('\0')
        .unwrap_or((text, "fleetplane-01.example"));
    let Ok(re) = compile_regex(pattern) else {
        return;
    };
    if let Some(m) = re.find(sample) {
        // The pattern is anchored at both ends: a match is the whole sample.
        assert_eq!(
            (m.start(), m.end()),
            (0, sample.len()),
            "{pattern:?} on {sample:?}"
        );
    }
    let _ = re.captures(sample);
    let _ = re.is_match("");
});

//! Parses arbitrary bytes as a workflow definition (YAML or JSON), including its expressions and
//! structural checks. Must never panic or hang.
#![no_main]

use fleetplane_workflow::parse_definition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_definition(data);
});

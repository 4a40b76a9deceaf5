//! Imports arbitrary bytes as a profile document (Palette's or Fleetplane's dialect); when it
//! parses, validates it against the built-in catalog; when valid, exports it and imports the
//! export again. Must never panic or hang.
#![no_main]

use fleetplane_domain::profile::{Catalog, ImportFormat, export_document, import_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = import_document(data) else {
        return;
    };
    if imported.validate(&Catalog::builtin()).is_err() {
        return;
    }
    let doc = export_document(&imported.version);
    let bytes = serde_json::to_vec(&doc).expect("an export document serializes");
    // Fleetplane's own export of a valid version is always importable, in its own dialect.
    let again = match import_document(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("the export of a valid import does not import: {e:?}"),
    };
    assert_eq!(again.format, ImportFormat::Fleetplane);
    let sensitive_default = imported
        .version
        .spec
        .variables
        .iter()
        .any(|v| v.sensitive && !v.default_value.is_empty());
    if !sensitive_default {
        // Nothing was masked: the round trip keeps the version's spec.
        assert_eq!(again.version.spec, imported.version.spec);
    }
});

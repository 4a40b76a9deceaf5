//! Checks arbitrary values against every variable format and against a variable definition with
//! an arbitrary pattern, dropdown options and flags. Must never panic or hang.
//!
//! Input: byte 0 picks the format, byte 1 the flags (required, dropdown); the rest is UTF-8
//! `value` or `value\0pattern`.
#![no_main]

use fleetplane_domain::profile::{
    Format, InputType, Variable, VariableOption, validate_format, validate_value,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [pick, flags, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = Format::ALL[usize::from(*pick) % Format::ALL.len()];
    let (value, regex) = text.split_once('\0').unwrap_or((text, ""));

    let format_ok = validate_format(format, value).is_ok();
    for &f in Format::ALL {
        let _ = validate_format(f, value);
    }

    let dropdown = flags & 2 != 0;
    let def = Variable {
        name: "v".to_owned(),
        format,
        input_type: if dropdown {
            InputType::Dropdown
        } else {
            InputType::Text
        },
        options: vec![VariableOption {
            value: value.chars().rev().collect(),
            ..VariableOption::default()
        }],
        regex: regex.to_owned(),
        required: flags & 1 != 0,
        ..Variable::default()
    };
    if validate_value(&def, value).is_ok() && !value.is_empty() {
        // A value the definition accepts has the definition's format.
        assert!(
            format_ok,
            "{format:?} accepted {value:?} through validate_value only"
        );
    }
});

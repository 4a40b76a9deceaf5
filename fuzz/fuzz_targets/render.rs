//! Renders an arbitrary values template in the sandbox, checks it statically, and rewrites it as
//! Palette text. Must never panic or hang (render fuel, recursion and output limits bound it).
//! A template that passes the save-time YAML check must render to valid YAML, also where the
//! render skipped parsing its output again.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use fleetplane_domain::profile::import::rewrite_palette;
use fleetplane_domain::profile::{
    TemplateContext, check_template, is_valid_values_yaml, render_template,
    render_values_as_saved,
};
use libfuzzer_sys::fuzz_target;

static CTX: LazyLock<TemplateContext> = LazyLock::new(|| {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    TemplateContext {
        variables: map(&[
            ("region", "eu-west-1"),
            ("replicas", "3"),
            ("enabled", "true"),
            ("empty", ""),
            ("tricky", "{{ var.region }}: [x, \"y\"]\n- z"),
            ("spaced", "it's a: b # c, [d] \\ é"),
            ("long", &"a".repeat(4096)),
        ]),
        macros: map(&[("org", "acme"), ("env", "prod")]),
        system: map(&[
            ("cluster.name", "dev-1"),
            ("cluster.uid", "5f0c"),
            ("cluster", "leaf-wins"),
            ("project.name", "default"),
        ]),
    }
});

fuzz_target!(|text: &str| {
    // check_template is stricter than a render (it refuses an unknown system path that a render
    // covers with `| default(…)`), so the two results are not compared.
    let _ = render_template(text, &CTX);
    let _ = check_template(text);
    // A template a version could be saved with renders to valid YAML, whether or not the
    // render parsed its output again (it skips that where what it printed cannot matter).
    if let Some(Ok(out)) = render_values_as_saved(text, &CTX) {
        assert!(is_valid_values_yaml(&out), "renders to invalid YAML: {out:?}");
    }
    if let Ok((jinja, rewrites)) = rewrite_palette(text) {
        let _ = check_template(&jinja);
        let out = render_template(&jinja, &CTX);
        if rewrites == 0
            && let Ok(out) = out
        {
            // With no reference rewritten, the escaped text renders back to the original.
            assert_eq!(out, text, "rewrite_palette changed plain text");
        }
    }
});

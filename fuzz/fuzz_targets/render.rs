//! Renders an arbitrary values template in the sandbox, checks it statically, and rewrites it as
//! Palette text. Must never panic or hang (render fuel, recursion and output limits bound it).
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use fleetplane_domain::profile::import::rewrite_palette;
use fleetplane_domain::profile::{TemplateContext, check_template, render_template};
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

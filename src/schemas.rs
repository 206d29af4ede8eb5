//! JSON Schemas of what netloom reads and prints, generated from the types
//! that (de)serialize them; `schemas/` holds the committed copies.

/// (name, file in `schemas/`, schema).
pub fn all() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "topology",
            "netloom.schema.json",
            crate::spec::schema_json(),
        ),
        (
            "plan",
            "plan.schema.json",
            pretty(schemars::schema_for!(crate::plan::Plan)),
        ),
        (
            "show",
            "show.schema.json",
            pretty(schemars::schema_for!(crate::engine::show::ShowReport)),
        ),
        (
            "saved-plan",
            "saved-plan.schema.json",
            pretty(schemars::schema_for!(crate::plan::saved::SavedPlan)),
        ),
    ]
}

/// The schema called `name`, if there is one.
pub fn named(name: &str) -> Option<String> {
    all()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, s)| s)
}

fn pretty(s: schemars::Schema) -> String {
    let mut t = serde_json::to_string_pretty(&s).expect("schema serializes");
    t.push('\n');
    t
}

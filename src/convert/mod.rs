//! `netloom convert`: topologies of other tools, as netloom TOML.

pub mod clab;

use std::path::Path;

/// A containerlab file converted, with the output checked by netloom's own
/// validation (a conversion that netloom would refuse is a bug here).
pub fn containerlab(path: &Path) -> Result<clab::Converted, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut c = clab::convert(&text, &path.display().to_string())?;
    let header = header(path, &c);
    c.toml = format!("{header}{}", c.toml);
    let name = path.with_extension("toml");
    let loaded = crate::spec::load_texts(vec![(name, c.toml.clone())]);
    if let Err(diags) = crate::model::build(&loaded) {
        let shown = crate::diag::render_all(&diags, &loaded.sources);
        return Err(format!(
            "the converted topology does not validate (please report this):\n{shown}"
        ));
    }
    Ok(c)
}

fn header(path: &Path, c: &clab::Converted) -> String {
    let mut h = format!(
        "# Converted from {} by `netloom convert clab` (netloom {}).\n\
         # netloom networks containers that exist: start them first, e.g.\n",
        path.display(),
        env!("CARGO_PKG_VERSION")
    );
    // A container started with --network none cannot join another network.
    let network = if c.mgmt { "" } else { "--network none " };
    for (name, image) in &c.containers {
        h.push_str(&format!(
            "#   docker run -d --name {name} {network}{} sleep infinity\n",
            image.as_deref().unwrap_or("IMAGE")
        ));
    }
    if !c.skipped.is_empty() {
        h.push_str("# Not converted:\n");
        for s in &c.skipped {
            h.push_str(&format!("#   - {s}\n"));
        }
    }
    h.push('\n');
    h
}

use super::GraphView;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], view: GraphView) -> ExitCode {
    match super::load(paths) {
        Ok(l) => {
            match view {
                GraphView::Deps => print!("{}", l.graph.to_dot(&l.topo.name)),
                GraphView::Lab => print!("{}", netloom::lab_view::to_dot(&l.topo)),
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

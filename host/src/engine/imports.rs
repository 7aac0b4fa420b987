//! What a component's imports say about it: whether it can wait (so it runs on the IO
//! executor by default), and whether it can observe the world outside its input (so its
//! results must never be memoized).

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// Import prefixes that make a component IO-bound by default: it can wait on the network or
/// on a clock, so it must not hold an engine thread while it waits.
const IO_IMPORTS: [&str; 3] = ["wasi:http/", "wasi:sockets/", "wasi:io/poll"];

/// Interfaces whose functions tell a task something its input does not: the time, random
/// numbers, the network. (The rest of WASI a task sees is empty or inert here: no files, no
/// environment, no stdin; stdout and stderr only go to its log.)
const OUTSIDE_WORLD: [&str; 4] = [
    "wasi:clocks/",
    "wasi:random/",
    "wasi:http/",
    "wasi:sockets/",
];

/// A component's imports, and what follows from them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Imports {
    /// The interfaces imported, sorted.
    pub interfaces: Vec<String>,
    /// Whether it imports an interface that can wait.
    pub can_wait: bool,
    /// The functions it imports that observe the outside world (`interface#function`),
    /// sorted; empty for a deterministic component.
    pub outside_world: Vec<String>,
}

impl Imports {
    /// The imports of `component`. Functions count, not interfaces: every Rust component
    /// imports `wasi:clocks/wall-clock` for the `datetime` type of file metadata, and only one
    /// that calls `now` can read the time.
    pub fn of(component: &Component, engine: &Engine) -> Self {
        let mut interfaces = Vec::new();
        let mut outside_world = Vec::new();
        for (name, item) in component.component_type().imports(engine) {
            interfaces.push(name.to_owned());
            if !OUTSIDE_WORLD.iter().any(|prefix| name.starts_with(prefix)) {
                continue;
            }
            match item.ty {
                ComponentItem::ComponentInstance(instance) => outside_world.extend(
                    instance
                        .exports(engine)
                        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(function, _)| format!("{name}#{function}")),
                ),
                ComponentItem::ComponentFunc(_) => outside_world.push(name.to_owned()),
                _ => {}
            }
        }
        interfaces.sort();
        outside_world.sort();
        let can_wait = interfaces
            .iter()
            .any(|import| IO_IMPORTS.iter().any(|prefix| import.starts_with(prefix)));
        Self {
            interfaces,
            can_wait,
            outside_world,
        }
    }
}

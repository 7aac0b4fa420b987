//! Host-side bindings of the `task` world in `wit/`: the one place that runs `bindgen!`.
//!
//! The world is bound twice: [`sync`] for CPU-bound jobs run on engine threads, and
//! [`io`] (whose `run` export is called asynchronously) for IO-bound jobs on the async
//! executor. Both share the host interface and its types.

/// Synchronous bindings: `run` is called on an engine thread.
pub(crate) mod sync {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
    });
}

/// Asynchronous bindings: `run` is awaited on the IO executor.
pub(crate) mod io {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        exports: { default: async },
        with: {
            "taskhost:task/host": super::sync::taskhost::task::host,
            "taskhost:task/types": super::sync::taskhost::task::types,
        },
    });
}

//! Host-side bindings of the `task` world in `wit/`: the one place that runs `bindgen!`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task",
});

//! The one module that runs host-side `bindgen!`: everything else imports its types from here.
//!
//! One sub-module per released WIT version of `pipewright:plugin`; a later version gets a
//! sibling module and its own cached `Linker`, so components built against an older contract
//! keep loading.

/// `pipewright:plugin@0.1.0` (frozen in `wit/plugin@0.1.0/`).
pub mod v0_1_0 {
    /// The `validation-policy` world; also owns the shared `types` and `host` interfaces.
    pub mod policy {
        wasmtime::component::bindgen!({
            world: "validation-policy",
            path: "../wit/plugin@0.1.0",
            // A fetch that outlives the call's deadline stops the guest as the deadline would
            // (see `imports.rs`); everything else answers through the WIT result.
            imports: { "pipewright:plugin/host.http-fetch": trappable },
        });
    }

    /// The `type-handler` world, reusing the `types` and `host` bindings above.
    pub mod type_handler {
        wasmtime::component::bindgen!({
            world: "type-handler",
            path: "../wit/plugin@0.1.0",
            with: {
                "pipewright:plugin/types": super::policy::pipewright::plugin::types,
                "pipewright:plugin/host": super::policy::pipewright::plugin::host,
            },
        });
    }
}

/// `pipewright:pipeline@0.1.0` (frozen in `wit/pipeline@0.1.0/`): runnable pipelines, called
/// synchronously (recognising the world; the benchmarks' bare baseline).
pub mod pipeline_v0_1_0 {
    wasmtime::component::bindgen!({
        world: "runnable",
        path: "../wit/pipeline@0.1.0",
    });
}

/// The same world with `run` called asynchronously: how the server runs pipelines, on the
/// request's own task (see [`crate::plugins::runnable`]). Its types are the ones above.
pub mod pipeline_v0_1_0_async {
    wasmtime::component::bindgen!({
        world: "runnable",
        path: "../wit/pipeline@0.1.0",
        exports: { default: async },
        with: {
            "pipewright:pipeline/types": super::pipeline_v0_1_0::pipewright::pipeline::types,
        },
    });
}

/// `pipewright:plugin@0.2.0` (frozen in `wit/plugin@0.2.0/`): 0.1.0's worlds plus one optional
/// export, `about`. Its worlds include 0.1.0's, so a 0.2.0 plugin is called through the 0.1.0
/// bindings above, and these add only the new export; the shared `types` and `host` are 0.1.0's.
pub mod v0_2_0 {
    /// The `validation-policy` world of 0.2.0 (0.1.0's, and `about`).
    pub mod policy {
        wasmtime::component::bindgen!({
            world: "pipewright:plugin/validation-policy@0.2.0",
            path: ["../wit/plugin@0.1.0", "../wit/plugin@0.2.0"],
            with: {
                "pipewright:plugin/types@0.1.0": super::super::v0_1_0::policy::pipewright::plugin::types,
                "pipewright:plugin/host@0.1.0": super::super::v0_1_0::policy::pipewright::plugin::host,
            },
        });
    }
}

/// `pipewright:plugin@0.3.0` (frozen in `wit/plugin@0.3.0/`): 0.1.0's `type-handler` world plus
/// one export, `surfaces`. As with 0.2.0, a 0.3.0 handler is called through the 0.1.0 bindings
/// and these add only the new export; the shared `types` and `host` are 0.1.0's.
pub mod v0_3_0 {
    /// The `type-handler` world of 0.3.0 (0.1.0's, and `surfaces`).
    pub mod type_handler {
        wasmtime::component::bindgen!({
            world: "pipewright:plugin/type-handler@0.3.0",
            path: ["../wit/plugin@0.1.0", "../wit/plugin@0.3.0"],
            with: {
                "pipewright:plugin/types@0.1.0": super::super::v0_1_0::policy::pipewright::plugin::types,
                "pipewright:plugin/host@0.1.0": super::super::v0_1_0::policy::pipewright::plugin::host,
            },
        });
    }
}

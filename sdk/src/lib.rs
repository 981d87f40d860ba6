//! `pipewright-sdk`: what a pipewright plugin author depends on.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` that implements one world of the
//! frozen WIT packages `pipewright:plugin@0.1.0`, `@0.2.0` and `@0.3.0` (in the repository's
//! `wit/plugin@…/`; each later world includes 0.1.0's and adds one export):
//!
//! - [`type_handler`]: adds a pipeline type (`describe`, `validate`, `scaffold`, `launch`);
//!   export it with [`export_type_handler!`]. Its type is offered on `/v1` only.
//! - [`v0_3`]: a type handler built against `pipewright:plugin@0.3.0`, which also says which
//!   surfaces besides `/v1` offer its type (`surfaces.served`, e.g. `acumos` for the ML
//!   Workbench's `pipelineType`); export it with [`export_type_handler_v0_3!`].
//! - [`policy`]: decides what may be registered (`check`); export it with [`export_policy!`].
//! - [`v0_2`]: a policy built against `pipewright:plugin@0.2.0`, which may also say what it
//!   enforces (`about`); export it with [`export_policy_v0_2!`].
//! - [`runnable`]: a pipeline run on demand (`pipewright:pipeline@0.1.0`, `run`); export it with
//!   [`export_runnable!`].
//!
//! ```ignore
//! use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};
//! struct MyPolicy;
//! impl Guest for MyPolicy {
//!     fn check(c: Pipeline, existing: Vec<String>, ctx: PolicyContext) -> Result<Pipeline, Vec<Violation>> {
//!         Ok(c)
//!     }
//! }
//! pipewright_sdk::export_policy!(MyPolicy);
//! ```
//!
//! Report domain failures through the returned `Result`; a panic becomes a trap, which the host
//! reports as a failure of your plugin.
//!
//! [`testing`] has constructors for the records a native unit test builds (a candidate pipeline,
//! a policy context, a file). `pipewright plugin new` starts a crate from one of the templates in
//! the repository's `sdk/templates/`; `sdk/README.md` is the author's guide.

pub mod testing;

/// Exports a [`policy::Guest`] implementation as the component's `policy` interface.
///
/// Expands to nothing when not compiling for WebAssembly, so a plugin crate's rules can be
/// unit-tested natively with `cargo test`.
#[macro_export]
macro_rules! export_policy {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::policy::export_policy_bindings!($ty);
    };
}

/// Exports a policy built against `pipewright:plugin@0.2.0` (see [`v0_2`]): its `check` and its
/// `about`.
///
/// Expands to nothing when not compiling for WebAssembly (see [`export_policy!`]).
#[macro_export]
macro_rules! export_policy_v0_2 {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::policy::export_policy_bindings!($ty);
        #[cfg(target_arch = "wasm32")]
        $crate::v0_2::export_about_bindings!($ty);
    };
}

/// Exports a [`type_handler::Guest`] implementation as the component's `pipeline-type` interface.
///
/// Expands to nothing when not compiling for WebAssembly (see [`export_policy!`]).
#[macro_export]
macro_rules! export_type_handler {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::type_handler::export_type_handler_bindings!($ty);
    };
}

/// Exports a type handler built against `pipewright:plugin@0.3.0` (see [`v0_3`]): its
/// `pipeline-type` and its `surfaces`.
///
/// Expands to nothing when not compiling for WebAssembly (see [`export_policy!`]).
#[macro_export]
macro_rules! export_type_handler_v0_3 {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::type_handler::export_type_handler_bindings!($ty);
        #[cfg(target_arch = "wasm32")]
        $crate::v0_3::export_surfaces_bindings!($ty);
    };
}

/// Exports a [`runnable::Guest`] implementation as the component's `run` interface
/// (world `pipewright:pipeline/runnable@0.1.0`).
///
/// Expands to nothing when not compiling for WebAssembly (see [`export_policy!`]).
#[macro_export]
macro_rules! export_runnable {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::runnable::export_runnable_bindings!($ty);
    };
}

/// Bindings of the `runnable` world of `pipewright:pipeline@0.1.0`: a pipeline run on demand.
///
/// ```ignore
/// use pipewright_sdk::runnable::{Guest, NamedValue, RunError, Value};
/// struct Hello;
/// impl Guest for Hello {
///     fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
///         let name = pipewright_sdk::runnable::string(&inputs, "text")?;
///         Ok(vec![NamedValue::new("greeting", Value::String(format!("hello, {name}")))])
///     }
/// }
/// pipewright_sdk::export_runnable!(Hello);
/// ```
pub mod runnable {
    wit_bindgen::generate!({
        world: "runnable",
        path: "../wit/pipeline@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_runnable_bindings",
        default_bindings_module: "pipewright_sdk::runnable",
    });

    pub use self::exports::pipewright::pipeline::run::Guest;
    pub use self::pipewright::pipeline::types::{NamedValue, RunError, Value};

    /// Where the pipeline's own files are (read-only).
    pub const PIPELINE_DIR: &str = "/pipeline";
    /// Where file inputs are.
    pub const INPUTS_DIR: &str = "/inputs";
    /// Where file outputs go.
    pub const OUTPUTS_DIR: &str = "/outputs";

    impl NamedValue {
        pub fn new(name: &str, value: Value) -> Self {
            NamedValue {
                name: name.to_string(),
                value,
            }
        }
    }

    impl RunError {
        pub fn new(code: &str, message: impl Into<String>) -> Self {
            RunError {
                code: code.to_string(),
                message: message.into(),
            }
        }
    }

    /// The input called `name`, or a `missing-input` error.
    pub fn input<'a>(inputs: &'a [NamedValue], name: &str) -> Result<&'a Value, RunError> {
        inputs
            .iter()
            .find(|i| i.name == name)
            .map(|i| &i.value)
            .ok_or_else(|| RunError::new("missing-input", format!("no input named `{name}`")))
    }

    /// The string input called `name`, or an error naming what was wrong.
    pub fn string(inputs: &[NamedValue], name: &str) -> Result<String, RunError> {
        match input(inputs, name)? {
            Value::String(s) => Ok(s.clone()),
            _ => Err(RunError::new(
                "wrong-input-type",
                format!("input `{name}` must be a string"),
            )),
        }
    }
}

/// Bindings of the `validation-policy` world.
pub mod policy {
    wit_bindgen::generate!({
        world: "validation-policy",
        path: "../wit/plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_policy_bindings",
        default_bindings_module: "pipewright_sdk::policy",
    });

    pub use self::exports::pipewright::plugin::policy::{Guest, PolicyContext, Violation};
    pub use self::pipewright::plugin::host;
    pub use self::pipewright::plugin::types::{Pipeline, Port, Property};

    impl Violation {
        /// A violation of `field` with a stable `code` and a human-readable message.
        pub fn new(code: &str, field: Option<&str>, message: impl Into<String>) -> Self {
            Violation {
                code: code.to_string(),
                field: field.map(str::to_string),
                message: message.into(),
            }
        }
    }
}

/// Bindings of `pipewright:plugin@0.2.0`: the same `validation-policy` world as 0.1.0, plus the
/// optional `about` export, in which a policy says what it enforces (the host shows it beside
/// the plugin). Implement both [`v0_2::Guest`] (`check`, as in [`policy`]) and
/// [`v0_2::AboutGuest`], and export with [`export_policy_v0_2!`]. A 0.1.0 policy needs nothing of
/// this: the host loads both.
///
/// ```ignore
/// use pipewright_sdk::v0_2::{AboutGuest, Guest, Pipeline, PolicyAbout, PolicyContext, Violation};
/// struct NoDrafts;
/// impl Guest for NoDrafts { /* check, as for 0.1.0 */ }
/// impl AboutGuest for NoDrafts {
///     fn describe() -> PolicyAbout {
///         PolicyAbout { summary: "no pre-release versions".into(), codes: vec!["pre-release".into()] }
///     }
/// }
/// pipewright_sdk::export_policy_v0_2!(NoDrafts);
/// ```
pub mod v0_2 {
    // Only what 0.2.0 adds is generated here (a world of this crate's own that exports
    // `about`); `check` comes from [`crate::policy`]'s 0.1.0 bindings. Together they make the
    // exports of `pipewright:plugin/validation-policy@0.2.0`, whose world includes 0.1.0's.
    wit_bindgen::generate!({
        inline: "package pipewright-sdk:contract-additions;
                 world about { export pipewright:plugin/about@0.2.0; }",
        path: ["../wit/plugin@0.1.0", "../wit/plugin@0.2.0"],
        world: "pipewright-sdk:contract-additions/about",
        pub_export_macro: true,
        export_macro_name: "export_about_bindings",
        default_bindings_module: "pipewright_sdk::v0_2",
    });

    pub use self::exports::pipewright::plugin0_2_0::about::{Guest as AboutGuest, PolicyAbout};
    pub use crate::policy::{Guest, Pipeline, PolicyContext, Port, Property, Violation};
}

/// Bindings of `pipewright:plugin@0.3.0`: the same `type-handler` world as 0.1.0, plus the
/// `surfaces` export, in which a type handler names the surfaces besides `/v1` that offer its
/// type. Implement both [`v0_3::Guest`] (`describe`, `validate`, `scaffold`, `launch`, as in
/// [`type_handler`]) and [`v0_3::SurfacesGuest`], and export with [`export_type_handler_v0_3!`].
/// A type handler of 0.1.0 needs nothing of this: the host loads both, and offers its type on
/// `/v1` only.
///
/// ```ignore
/// use pipewright_sdk::v0_3::{Guest, SurfacesGuest, ACUMOS};
/// struct Notebook;
/// impl Guest for Notebook { /* describe, validate, scaffold, launch, as for 0.1.0 */ }
/// impl SurfacesGuest for Notebook {
///     fn served() -> Vec<String> {
///         vec![ACUMOS.into()]
///     }
/// }
/// pipewright_sdk::export_type_handler_v0_3!(Notebook);
/// ```
pub mod v0_3 {
    // Only what 0.3.0 adds is generated here (a world of this crate's own that exports
    // `surfaces`); the rest comes from [`crate::type_handler`]'s 0.1.0 bindings. Together they
    // make the exports of `pipewright:plugin/type-handler@0.3.0`, whose world includes 0.1.0's.
    wit_bindgen::generate!({
        inline: "package pipewright-sdk:type-handler-additions;
                 world surfaces { export pipewright:plugin/surfaces@0.3.0; }",
        path: ["../wit/plugin@0.1.0", "../wit/plugin@0.3.0"],
        world: "pipewright-sdk:type-handler-additions/surfaces",
        pub_export_macro: true,
        export_macro_name: "export_surfaces_bindings",
        default_bindings_module: "pipewright_sdk::v0_3",
    });

    pub use self::exports::pipewright::plugin0_3_0::surfaces::Guest as SurfacesGuest;
    pub use crate::type_handler::{
        host, Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, Port,
        Property, Severity, TypeInfo,
    };

    /// The ML Workbench pipeline service (`/mlWorkbench/v1/pipeline`): its `pipelineType`
    /// names a type by its id, in any case (`Jupyter` for `jupyter`).
    pub const ACUMOS: &str = "acumos";
}

/// Bindings of the `type-handler` world.
pub mod type_handler {
    wit_bindgen::generate!({
        world: "type-handler",
        path: "../wit/plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_type_handler_bindings",
        default_bindings_module: "pipewright_sdk::type_handler",
    });

    #[cfg(feature = "json")]
    pub mod service;

    pub use self::exports::pipewright::plugin::pipeline_type::Guest;
    pub use self::pipewright::plugin::host;
    pub use self::pipewright::plugin::types::{
        Diagnostic, File, LaunchContext, LaunchInfo, Pipeline, PluginError, Port, Property,
        Severity, TypeInfo,
    };

    /// The launch property in which the host passes the absolute path, on the host's disk, of
    /// the pipeline's working copy (the checkout behind `repository-url`). A type handler that
    /// starts a service on the same machine points it there (Jupyter's `root_dir`); absent when
    /// the host has no working copy for the pipeline.
    pub const WORKING_COPY_PROPERTY: &str = "working-copy";

    /// The value of `key` among `properties` (the first, if several).
    pub fn property<'a>(properties: &'a [Property], key: &str) -> Option<&'a str> {
        properties
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// Checks every file of `content` whose path ends with `extension` as a JSON document with
    /// `check`. No such file gives one `missing_code` diagnostic; a file that is not JSON, or that
    /// `check` refuses (with a reason), gives an `invalid_code` diagnostic naming the file.
    #[cfg(feature = "json")]
    pub fn validate_json_documents(
        content: &[File],
        extension: &str,
        missing_code: &str,
        invalid_code: &str,
        check: impl Fn(&serde_json::Value) -> Result<(), String>,
    ) -> Vec<Diagnostic> {
        let documents: Vec<&File> = content
            .iter()
            .filter(|f| f.path.ends_with(extension))
            .collect();
        if documents.is_empty() {
            return vec![Diagnostic::error(
                missing_code,
                None,
                format!("the content holds no `{extension}` file"),
            )];
        }
        documents
            .into_iter()
            .filter_map(|file| {
                let verdict = serde_json::from_slice(&file.contents)
                    .map_err(|e| format!("not JSON: {e}"))
                    .and_then(|doc| check(&doc));
                verdict.err().map(|why| {
                    Diagnostic::error(
                        invalid_code,
                        Some(&file.path),
                        format!("{}: {why}", file.path),
                    )
                })
            })
            .collect()
    }

    impl PluginError {
        pub fn new(code: &str, message: impl Into<String>) -> Self {
            PluginError {
                code: code.to_string(),
                message: message.into(),
            }
        }
    }

    impl Diagnostic {
        /// An `error` diagnostic: the host refuses the content.
        pub fn error(code: &str, field: Option<&str>, message: impl Into<String>) -> Self {
            Diagnostic {
                severity: Severity::Error,
                code: code.to_string(),
                field: field.map(str::to_string),
                message: message.into(),
            }
        }
    }
}

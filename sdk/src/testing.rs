//! Constructors for the WIT records a plugin's native unit tests build: a candidate
//! [`Pipeline`](crate::policy::Pipeline) (`Pipeline::new("alice", "churn").with_version("1.0.0")`),
//! a [`PolicyContext`](crate::policy::PolicyContext) (`PolicyContext::for_account("alice")`), a
//! text [`File`](crate::type_handler::File) and a runnable's
//! [`NamedValue`](crate::runnable::NamedValue) inputs.
//!
//! Each world's bindings have their own copy of the shared records (`policy::Pipeline` and
//! `type_handler::Pipeline` are distinct types), so the pipeline constructors are written once
//! and implemented for both.
//!
//! ```
//! use pipewright_sdk::policy::{Pipeline, PolicyContext};
//! let candidate = Pipeline::new("alice", "churn").with_version("1.0.0").with_type("jupyter");
//! let context = PolicyContext::for_account("alice").with_config("prefix", "team-");
//! assert_eq!(candidate.version.as_deref(), Some("1.0.0"));
//! assert_eq!(context.config[0].value, "team-");
//! ```

use crate::policy::PolicyContext;
use crate::runnable::{NamedValue, Value};

/// Implements the pipeline constructors for one world's `Pipeline` and `Property`.
macro_rules! pipeline_constructors {
    ($module:ident) => {
        impl crate::$module::Pipeline {
            /// `namespace/name`, unversioned, of type `""`, with no ports or properties.
            pub fn new(namespace: &str, name: &str) -> Self {
                crate::$module::Pipeline {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    version: None,
                    type_: String::new(),
                    description: None,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    properties: Vec::new(),
                }
            }

            /// The same pipeline at `version`.
            pub fn with_version(mut self, version: &str) -> Self {
                self.version = Some(version.to_string());
                self
            }

            /// The same pipeline of pipeline type `type_id`.
            pub fn with_type(mut self, type_id: &str) -> Self {
                self.type_ = type_id.to_string();
                self
            }

            /// The same pipeline with `description`.
            pub fn with_description(mut self, description: &str) -> Self {
                self.description = Some(description.to_string());
                self
            }

            /// The same pipeline with one more property.
            pub fn with_property(mut self, key: &str, value: &str) -> Self {
                self.properties.push(crate::$module::Property {
                    key: key.to_string(),
                    value: value.to_string(),
                });
                self
            }
        }
    };
}

pipeline_constructors!(policy);
pipeline_constructors!(type_handler);

impl PolicyContext {
    /// A request of `account`'s user of the same name, through `/v1`, with no bound config.
    pub fn for_account(account: &str) -> Self {
        PolicyContext {
            surface: "v1".to_string(),
            account: account.to_string(),
            user: account.to_string(),
            config: Vec::new(),
        }
    }

    /// The same context through another surface (`v1`, `acumos`, `gbdx`, `mystic`).
    pub fn with_surface(mut self, surface: &str) -> Self {
        self.surface = surface.to_string();
        self
    }

    /// The same context with one more config value bound with the policy.
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.config.push(crate::policy::Property {
            key: key.to_string(),
            value: value.to_string(),
        });
        self
    }
}

impl crate::type_handler::File {
    /// A file at `path` holding `text`.
    pub fn text(path: &str, text: &str) -> Self {
        crate::type_handler::File {
            path: path.to_string(),
            contents: text.as_bytes().to_vec(),
        }
    }

    /// The contents as text (lossy), for assertions.
    pub fn contents_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.contents)
    }
}

/// A string input called `name`, as a runnable's `run` receives it.
pub fn string_input(name: &str, value: &str) -> NamedValue {
    NamedValue::new(name, Value::String(value.to_string()))
}

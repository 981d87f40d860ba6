//! A runnable pipeline's manifest: what its `pipeline.yaml` says (`name`, `version`,
//! `component`, `description`, `inputs`, `outputs`), pushed as JSON and kept both as the
//! version's `pipeline.json` and as its definition. One type for every reader: the host runs a
//! version by it (the component, the ports the arguments bind to), the `runnable` type handler
//! (a wasm32 guest) validates a version's content by it, and the CLI pushes a folder by it. It
//! depends on serde alone, so both sides can.
//!
//! Reading an object never fails: a field of the wrong kind reads as absent (text), as
//! [`Ports::NotAList`] or as [`PortType::Other`], so the type handler can name every problem at
//! once, and the host reads of a definition that skipped those checks (`/v1` stores definitions
//! as given) what it always did. Fields this type does not name are kept in `other`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The field of a Mystic `pipeline.yaml` naming its graph (`module:attribute`).
pub const PYTHON_GRAPH: &str = "pipeline_graph";

/// `pipeline.yaml`, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<String>,
    /// The path of the component in the pipeline's files.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub component: Option<String>,
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// The values a run takes, in the order its arguments are given.
    #[serde(default)]
    pub inputs: Ports,
    /// The values a run gives back.
    #[serde(default)]
    pub outputs: Ports,
    /// Every other field, as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RunManifest {
    /// The graph a Python pipeline runs, `module:attribute` (Mystic's `pipeline_graph`): a
    /// manifest that has one and no `component` runs on the Python runtime.
    pub fn python_graph(&self) -> Option<&str> {
        if self.component.is_some() {
            return None;
        }
        self.other.get(PYTHON_GRAPH).and_then(Value::as_str)
    }

    /// The manifest `value` holds; None when it is not a JSON object.
    pub fn from_json(value: &Value) -> Option<RunManifest> {
        if !value.is_object() {
            return None;
        }
        RunManifest::deserialize(value).ok()
    }
}

/// A manifest's `inputs` or `outputs`. Absent or null: no ports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Ports {
    List(Vec<Port>),
    /// Something other than a list, as given.
    NotAList(Value),
}

impl Default for Ports {
    fn default() -> Self {
        Ports::List(Vec::new())
    }
}

impl Ports {
    /// The ports; none when this is not a list.
    pub fn as_slice(&self) -> &[Port] {
        match self {
            Ports::List(ports) => ports,
            Ports::NotAList(_) => &[],
        }
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Null => Ports::default(),
            Value::Array(ports) => Ports::List(ports.into_iter().map(Port::read).collect()),
            other => Ports::NotAList(other),
        })
    }
}

/// One declared input or output: `{name, type, ...}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// Empty when absent or not text.
    #[serde(default, deserialize_with = "text_or_empty")]
    pub name: String,
    #[serde(rename = "type", default)]
    pub r#type: PortType,
    /// Every other field, as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Port {
    /// A list entry: one that is not an object has an empty name and type.
    fn read(value: Value) -> Port {
        serde_json::from_value(value).unwrap_or_default()
    }
}

/// The type of a port's values (Mystic's, minus Python's pickles and streams).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortType {
    String,
    Integer,
    Float,
    Boolean,
    Dictionary,
    Array,
    File,
    /// Any other text, as given; empty when absent or not text.
    Other(String),
}

impl Default for PortType {
    fn default() -> Self {
        PortType::Other(String::new())
    }
}

impl PortType {
    /// Every type a manifest may declare, by name.
    pub const NAMES: &'static [&'static str] = &[
        "string",
        "integer",
        "float",
        "boolean",
        "dictionary",
        "array",
        "file",
    ];

    pub fn parse(text: &str) -> PortType {
        match text {
            "string" => PortType::String,
            "integer" => PortType::Integer,
            "float" => PortType::Float,
            "boolean" => PortType::Boolean,
            "dictionary" => PortType::Dictionary,
            "array" => PortType::Array,
            "file" => PortType::File,
            other => PortType::Other(other.to_string()),
        }
    }

    /// The name, as a manifest spells it.
    pub fn as_str(&self) -> &str {
        match self {
            PortType::String => "string",
            PortType::Integer => "integer",
            PortType::Float => "float",
            PortType::Boolean => "boolean",
            PortType::Dictionary => "dictionary",
            PortType::Array => "array",
            PortType::File => "file",
            PortType::Other(text) => text,
        }
    }

    /// One of [`PortType::NAMES`].
    pub fn is_known(&self) -> bool {
        !matches!(self, PortType::Other(_))
    }
}

impl Serialize for PortType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PortType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(text(deserializer)?
            .map(|text| PortType::parse(&text))
            .unwrap_or_default())
    }
}

/// Text, or None for anything else.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

fn text_or_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(text(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn port(name: &str, r#type: PortType) -> Port {
        Port {
            name: name.into(),
            r#type,
            other: Map::new(),
        }
    }

    #[test]
    fn reads_todays_shape() {
        let manifest = RunManifest::from_json(&json!({
            "name": "hello", "version": "0.1.0", "component": "hello.wasm",
            "description": "Says hello",
            "inputs": [{"name": "text", "type": "string", "doc": "who to greet"}],
            "outputs": [{"name": "greeting", "type": "string"}, {"name": "log", "type": "file"}],
            "tags": ["demo"],
        }))
        .unwrap();
        assert_eq!(manifest.name.as_deref(), Some("hello"));
        assert_eq!(manifest.version.as_deref(), Some("0.1.0"));
        assert_eq!(manifest.component.as_deref(), Some("hello.wasm"));
        assert_eq!(manifest.description.as_deref(), Some("Says hello"));
        let mut text = port("text", PortType::String);
        text.other.insert("doc".into(), json!("who to greet"));
        assert_eq!(manifest.inputs, Ports::List(vec![text]));
        assert_eq!(
            manifest.outputs.as_slice(),
            [
                port("greeting", PortType::String),
                port("log", PortType::File)
            ]
        );
        assert_eq!(
            manifest.other,
            json!({"tags": ["demo"]}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn what_is_wrong_reads_as_absent_or_other() {
        assert_eq!(RunManifest::from_json(&json!(["a", "list"])), None);
        assert_eq!(RunManifest::from_json(&Value::Null), None);
        let cases = [
            (json!({}), RunManifest::default()),
            (
                json!({"name": 5, "version": null, "component": "", "description": []}),
                RunManifest {
                    component: Some(String::new()),
                    ..RunManifest::default()
                },
            ),
            (
                json!({"inputs": null, "outputs": "text"}),
                RunManifest {
                    outputs: Ports::NotAList(json!("text")),
                    ..RunManifest::default()
                },
            ),
            (
                json!({"inputs": [3, {"type": "pkl"}, {"name": "n", "type": 7}, {"name": "m"}]}),
                RunManifest {
                    inputs: Ports::List(vec![
                        port("", PortType::Other(String::new())),
                        port("", PortType::Other("pkl".into())),
                        port("n", PortType::Other(String::new())),
                        port("m", PortType::Other(String::new())),
                    ]),
                    ..RunManifest::default()
                },
            ),
        ];
        for (given, read) in cases {
            assert_eq!(
                RunManifest::from_json(&given).as_ref(),
                Some(&read),
                "{given}"
            );
        }
        assert!(Ports::NotAList(json!(1)).as_slice().is_empty());
    }

    #[test]
    fn port_types_read_and_write_by_name() {
        for name in PortType::NAMES {
            let parsed = PortType::parse(name);
            assert!(parsed.is_known());
            assert_eq!(parsed.as_str(), *name);
            assert_eq!(serde_json::to_value(&parsed).unwrap(), json!(name));
        }
        assert!(!PortType::parse("pkl").is_known());
        assert_eq!(PortType::parse("pkl").as_str(), "pkl");
    }

    #[test]
    fn writes_the_shape_it_reads() {
        let given = json!({
            "name": "hello", "version": "0.1.0", "component": "hello.wasm",
            "inputs": [{"name": "text", "type": "string"}],
            "outputs": [{"name": "result", "type": "string", "doc": "kept"}],
            "extra": {"kept": true},
        });
        let manifest = RunManifest::from_json(&given).unwrap();
        assert_eq!(serde_json::to_value(&manifest).unwrap(), given);
    }
}

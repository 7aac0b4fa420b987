//! What a task declares about itself: its manifest, which travels inside the component.
//!
//! `#[taskhost_sdk::task(kind = "io")]` writes a custom section named `taskhost:task` into the
//! task's core module, holding a JSON object (`{"kind":"io"}`; `{}` when the attribute has no
//! arguments). The linker keeps custom sections, and the component wraps the core module
//! unchanged, so the manifest is inside every copy of the component: a file dropped in the
//! tasks directory, an upload, a cached artifact's source. The host reads it with wasmparser
//! whenever it loads a component, looking through nested modules and components.
//!
//! No section means an empty manifest (a component built without the SDK, or with an older
//! one). A malformed manifest (not JSON, a value a key does not take, a key this host does not
//! know, or the section given twice) makes the component fail to load with a message saying
//! so: a declaration is never silently ignored. New keys are added here before the SDK writes
//! them.

use serde::Deserialize;
use wasmparser::{Parser, Payload};

use super::Kind;

/// The name of the custom section holding the manifest.
pub const SECTION: &str = "taskhost:task";

/// What a task declares about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// How its jobs run unless a job says otherwise; `None` leaves it to its imports.
    pub kind: Option<Kind>,
    /// Whether its results are memoized unless a job says otherwise: `#[task(memoize)]`.
    #[serde(default)]
    pub memoize: bool,
}

/// Why a component's manifest could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The component's sections could not be read.
    #[error("cannot read the component's sections: {0}")]
    Unreadable(#[from] wasmparser::BinaryReaderError),
    /// More than one `taskhost:task` section.
    #[error("the component has {0} `{SECTION}` manifest sections; a task declares one")]
    Repeated(usize),
    /// The section's contents are not a manifest.
    #[error(
        "its `{SECTION}` manifest is malformed ({0}): it is a JSON object such as \
         {{\"kind\":\"io\"}}, as #[taskhost_sdk::task(kind = \"io\")] writes it"
    )]
    Malformed(serde_json::Error),
}

impl Manifest {
    /// Reads the manifest of the component (or module) in `bytes`; an empty manifest if it
    /// has none.
    pub fn read(bytes: &[u8]) -> Result<Self, ManifestError> {
        let mut sections = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            if let Payload::CustomSection(section) = payload?
                && section.name() == SECTION
            {
                sections.push(section.data());
            }
        }
        match sections.as_slice() {
            [] => Ok(Self::default()),
            [data] => Self::parse(data).map_err(ManifestError::Malformed),
            more => Err(ManifestError::Repeated(more.len())),
        }
    }

    /// The manifest in `data`: a JSON object (serde's derived struct would take an array too).
    fn parse(data: &[u8]) -> serde_json::Result<Self> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(data)?;
        serde_json::from_value(object.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_tests::fixtures;

    /// A section: its id, then its contents' length (one LEB128 byte: tests keep it short).
    fn section(id: u8, contents: &[u8]) -> Vec<u8> {
        let length = u8::try_from(contents.len()).expect("a short section");
        assert!(length < 0x80);
        [&[id, length][..], contents].concat()
    }

    fn custom(name: &str, data: &[u8]) -> Vec<u8> {
        let name_length = u8::try_from(name.len()).unwrap();
        section(0, &[&[name_length], name.as_bytes(), data].concat())
    }

    /// A core module holding `sections`.
    fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        [b"\0asm\x01\0\0\0".to_vec(), sections.concat()].concat()
    }

    /// A component holding `sections`.
    fn component(sections: &[Vec<u8>]) -> Vec<u8> {
        [b"\0asm\x0d\0\x01\0".to_vec(), sections.concat()].concat()
    }

    /// A component whose core module (nested, as the SDK's linker leaves it) holds `data` as
    /// its manifest.
    fn declaring(data: &[u8]) -> Vec<u8> {
        component(&[section(1, &module(&[custom(SECTION, data)]))])
    }

    #[test]
    fn the_manifest_is_found_in_a_nested_core_module() {
        assert_eq!(
            Manifest::read(&declaring(br#"{"kind":"io"}"#))
                .unwrap()
                .kind,
            Some(Kind::Io)
        );
        assert_eq!(
            Manifest::read(&declaring(b"{}")).unwrap(),
            Manifest::default()
        );
        let other = component(&[
            custom("producers", b"x"),
            custom(SECTION, br#"{"kind":"cpu","memoize":true}"#),
        ]);
        assert_eq!(
            Manifest::read(&other).unwrap(),
            Manifest {
                kind: Some(Kind::Cpu),
                memoize: true
            }
        );
    }

    #[test]
    fn no_manifest_declares_nothing() {
        let plain = component(&[section(1, &module(&[custom("name", b"\0")]))]);
        assert_eq!(Manifest::read(&plain).unwrap(), Manifest::default());
    }

    #[test]
    fn example_tasks_carry_what_they_declare_through_the_linker() {
        let read = |path: &str| Manifest::read(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(read(fixtures::SPIN).kind, Some(Kind::Cpu));
        assert_eq!(read(fixtures::SLEEP).kind, Some(Kind::Io));
        assert_eq!(read(fixtures::FIB).kind, None);
        let wordcount = read(fixtures::WORDCOUNT);
        assert_eq!((wordcount.kind, wordcount.memoize), (None, true));
        assert!(!read(fixtures::FIB).memoize);
    }

    #[test]
    fn a_malformed_manifest_says_what_is_wrong() {
        let cases: [(&[u8], &str); 7] = [
            (b"kind=io", "expected value"),
            (br#"{"kind":"gpu"}"#, "unknown variant `gpu`"),
            (br#"{"kind":1}"#, "invalid type: integer `1`"),
            (
                br#"{"kind":"io","memoise":true}"#,
                "unknown field `memoise`",
            ),
            (br#"["io"]"#, "expected a map"),
            (br#"{"memoize":"yes"}"#, "expected a boolean"),
            (br#"{"kind":"io"}{"kind":"io"}"#, "trailing characters"),
        ];
        for (data, expected) in cases {
            let error = Manifest::read(&declaring(data)).unwrap_err();
            assert!(matches!(error, ManifestError::Malformed(_)), "{error}");
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("taskhost:task"), "{message}");
        }
        let twice = component(&[custom(SECTION, b"{}"), custom(SECTION, b"{}")]);
        assert!(matches!(
            Manifest::read(&twice),
            Err(ManifestError::Repeated(2))
        ));
        assert!(matches!(
            Manifest::read(b"not wasm"),
            Err(ManifestError::Unreadable(_))
        ));
    }
}

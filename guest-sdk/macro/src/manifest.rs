//! The arguments of `#[task(..)]`: what a task declares about itself, written into the
//! component as its manifest.
//!
//! The manifest is a JSON object in the custom section `taskhost:task`, one key per argument
//! given (`#[task(kind = "io", memoize)]` gives `{"kind":"io","memoize":true}`; `#[task]` gives
//! `{}`). The host reads
//! it when it loads the component and refuses keys it does not know, so a key added here must
//! be added to the host's reader (`host/src/engine/manifest.rs`) first.

use proc_macro2::TokenStream;
use syn::LitStr;
use syn::meta::ParseNestedMeta;

/// The values `kind` takes.
const KINDS: [&str; 2] = ["cpu", "io"];

/// What the attribute's arguments declare.
#[derive(Default)]
pub struct Manifest {
    /// How the task's jobs run unless a job says otherwise: `cpu` or `io`.
    kind: Option<String>,
    /// Whether the task's results are memoized unless a job says otherwise.
    memoize: bool,
}

/// What the error for an unknown argument lists.
const ARGUMENTS: &str = "it takes `kind = \"cpu\"`, `kind = \"io\"` and `memoize`";

impl Manifest {
    /// Parses `key = "value", ...`; an unknown key, a repeated key or a value a key does not
    /// take is an error spanned on it.
    pub fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut manifest = Self::default();
        let parser = syn::meta::parser(|meta| manifest.parse_key(meta));
        syn::parse::Parser::parse2(parser, attr)?;
        Ok(manifest)
    }

    fn parse_key(&mut self, meta: ParseNestedMeta) -> syn::Result<()> {
        if meta.path.is_ident("kind") {
            if self.kind.is_some() {
                return Err(meta.error("`kind` is given twice"));
            }
            let value: LitStr = meta.value()?.parse()?;
            if !KINDS.contains(&value.value().as_str()) {
                return Err(syn::Error::new(
                    value.span(),
                    format!(
                        "unknown kind {:?}: a task's kind is \"cpu\" or \"io\"",
                        value.value()
                    ),
                ));
            }
            self.kind = Some(value.value());
            Ok(())
        } else if meta.path.is_ident("memoize") {
            if self.memoize {
                return Err(meta.error("`memoize` is given twice"));
            }
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`memoize` takes no value: write `#[task(memoize)]`"));
            }
            self.memoize = true;
            Ok(())
        } else {
            let key = meta
                .path
                .get_ident()
                .map_or_else(|| "this".to_owned(), |ident| format!("`{ident}`"));
            Err(meta.error(format!("{key} is not an argument of #[task]: {ARGUMENTS}")))
        }
    }

    /// The manifest as the JSON text the host reads. Values are from closed sets of plain
    /// words, so nothing needs escaping.
    pub fn to_json(&self) -> String {
        let kind = self
            .kind
            .as_ref()
            .map(|kind| format!("\"kind\":\"{kind}\""));
        let memoize = self.memoize.then(|| "\"memoize\":true".to_owned());
        let entries: Vec<String> = [kind, memoize].into_iter().flatten().collect();
        format!("{{{}}}", entries.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(attr: &str) -> Result<String, String> {
        let attr: TokenStream = attr.parse().unwrap();
        Manifest::parse(attr)
            .map(|manifest| manifest.to_json())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn no_arguments_give_an_empty_manifest() {
        assert_eq!(parse(""), Ok("{}".to_owned()));
    }

    #[test]
    fn a_declared_kind_is_written() {
        assert_eq!(parse(r#"kind = "io""#), Ok(r#"{"kind":"io"}"#.to_owned()));
        assert_eq!(
            parse(r#"kind = "cpu","#),
            Ok(r#"{"kind":"cpu"}"#.to_owned())
        );
    }

    #[test]
    fn memoize_is_written_with_or_without_a_kind() {
        assert_eq!(parse("memoize"), Ok(r#"{"memoize":true}"#.to_owned()));
        assert_eq!(
            parse(r#"memoize, kind = "cpu""#),
            Ok(r#"{"kind":"cpu","memoize":true}"#.to_owned())
        );
    }

    #[test]
    fn unknown_keys_values_and_repeats_are_errors() {
        let cases = [
            (r#"kynd = "io""#, "`kynd` is not an argument of #[task]"),
            (r#"kind = "gpu""#, "unknown kind \"gpu\""),
            ("kind = io", "expected string literal"),
            ("kind", "expected `=`"),
            (r#"kind = "io", kind = "cpu""#, "`kind` is given twice"),
            (
                "memoise",
                "`memoise` is not an argument of #[task]: it takes",
            ),
            ("memoize, memoize", "`memoize` is given twice"),
            ("memoize = true", "`memoize` takes no value"),
        ];
        for (attr, expected) in cases {
            let error = parse(attr).unwrap_err();
            assert!(error.contains(expected), "{attr}: {error}");
        }
    }
}

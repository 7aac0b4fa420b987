//! The `#[task]` attribute of `taskhost-sdk`. Use it through `taskhost_sdk::task`.

mod manifest;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use manifest::Manifest;

/// Exports the function as the task's `run`: see the `taskhost_sdk` crate docs.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let function = syn::parse_macro_input!(item as ItemFn);
    match expand(attr, &function) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error).into()
        }
    }
}

fn expand(attr: TokenStream2, function: &ItemFn) -> syn::Result<TokenStream2> {
    let manifest = Manifest::parse(attr)?;
    check_signature(function)?;
    let manifest = manifest.to_json();
    let manifest_len = manifest.len();
    let manifest_bytes = syn::LitByteStr::new(manifest.as_bytes(), proc_macro2::Span::call_site());
    let name = &function.sig.ident;
    let call = if returns_result(&function.sig.output) {
        quote!(#name(input).map_err(::core::convert::Into::<::taskhost_sdk::TaskError>::into))
    } else {
        quote!(::core::result::Result::<_, ::taskhost_sdk::TaskError>::Ok(#name(input)))
    };
    Ok(quote! {
        #function

        #[doc(hidden)]
        struct __TaskhostTask;

        impl ::taskhost_sdk::__private::Guest for __TaskhostTask {
            fn run(
                input: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::taskhost_sdk::__private::WireError> {
                ::taskhost_sdk::__private::run(&input, |input| #call)
            }
        }

        ::taskhost_sdk::__private::export!(__TaskhostTask with_types_in ::taskhost_sdk::__private::bindings);

        /// The task's manifest: what it declares about itself, for the host to read when it
        /// loads the component. The linker keeps custom sections into the component.
        #[doc(hidden)]
        #[cfg(target_family = "wasm")]
        #[unsafe(link_section = "taskhost:task")]
        #[used]
        static __TASKHOST_MANIFEST: [u8; #manifest_len] = *#manifest_bytes;
    })
}

/// A task is a plain, synchronous, non-generic function of exactly one input.
fn check_signature(function: &ItemFn) -> syn::Result<()> {
    let sig = &function.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(
            token.span(),
            "a task function cannot be async",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a task function cannot be generic",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(_)), None) => Ok(()),
        (Some(FnArg::Receiver(receiver)), _) => Err(syn::Error::new(
            receiver.span(),
            "a task function is a free function, not a method",
        )),
        (None, _) => Err(syn::Error::new(
            sig.paren_token.span.join(),
            "a task function takes exactly one argument: its input, e.g. `input: In` where `In: Deserialize`",
        )),
        (Some(_), Some(extra)) => Err(syn::Error::new(
            extra.span(),
            "a task function takes exactly one argument: its input",
        )),
    }
}

/// Whether the declared return type is a `Result<..>`, whose error converts into `TaskError`.
fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::Path(path) = ty.as_ref() else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "Result")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(function: &str) -> String {
        let function: ItemFn = syn::parse_str(function).unwrap();
        expand(TokenStream2::new(), &function)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn accepts_one_input_with_or_without_result() {
        assert_eq!(
            error_for("fn run(input: In) -> Result<Out, TaskError> { todo!() }"),
            ""
        );
        assert_eq!(error_for("fn run(input: In) -> Out { todo!() }"), "");
        assert_eq!(error_for("fn run(_: In) {}"), "");
    }

    #[test]
    fn rejects_signatures_a_task_cannot_have() {
        let cases = [
            (
                "async fn run(input: In) -> Out { todo!() }",
                "cannot be async",
            ),
            (
                "fn run<T>(input: T) -> Out { todo!() }",
                "cannot be generic",
            ),
            ("fn run() -> Out { todo!() }", "exactly one argument"),
            (
                "fn run(a: In, b: In) -> Out { todo!() }",
                "exactly one argument",
            ),
            ("fn run(&self) -> Out { todo!() }", "not a method"),
        ];
        for (function, expected) in cases {
            let error = error_for(function);
            assert!(error.contains(expected), "{function}: {error}");
        }
    }

    #[test]
    fn the_manifest_goes_into_a_custom_section() {
        let function: ItemFn = syn::parse_str("fn run(input: In) -> Out { todo!() }").unwrap();
        let expanded = expand(quote!(kind = "io"), &function).unwrap().to_string();
        assert!(
            expanded.contains(r#"link_section = "taskhost:task""#),
            "{expanded}"
        );
        assert!(expanded.contains(r#"b"{\"kind\":\"io\"}""#), "{expanded}");
        let plain = expand(TokenStream2::new(), &function).unwrap().to_string();
        assert!(plain.contains(r#"b"{}""#), "{plain}");
        let error = expand(quote!(kind = "gpu"), &function).unwrap_err();
        assert!(error.to_string().contains("unknown kind"), "{error}");
    }

    #[test]
    fn only_a_result_return_type_is_mapped_into_task_errors() {
        let output = |ty: &str| -> ReturnType { syn::parse_str(&format!("-> {ty}")).unwrap() };
        assert!(returns_result(&output("Result<Out, TaskError>")));
        assert!(returns_result(&output("std::result::Result<Out, MyError>")));
        assert!(!returns_result(&output("Out")));
        assert!(!returns_result(&ReturnType::Default));
    }
}

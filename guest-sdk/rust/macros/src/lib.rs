//! Procedural macros behind `capsule-sdk`. Use them through `capsule_sdk::tool` and
//! `capsule_sdk::export_plugin!`; the generated code refers to `::capsule_sdk` paths only.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, ExprLit, FnArg, GenericArgument, Ident, ItemFn, Lit, LitBool, LitStr, Meta, Path,
    PathArguments, ReturnType, Token, Type,
};

/// Turns a plain function into a Capsule tool; list it in `export_plugin!` to export it.
///
/// The function takes one argument, a struct deriving `Deserialize` and `JsonSchema` whose
/// fields (and their doc comments) become the tool's parameters, or no argument. It returns:
/// - `String` / `&str` / `Content` / `Vec<Content>` / `ToolOutput`: content as given, no output
///   schema;
/// - any other type (must derive `Serialize` and `JsonSchema` and be a struct): structured JSON,
///   with an output schema derived from the type and the same JSON as a text block;
/// - or a `Result` of one of these, whose error converts into `ToolError` (any
///   `std::error::Error` does, so `?` works).
///
/// The doc comment is required: it is the description a model reads. Options:
/// `name = "..."` (default: the function's name), `title = "..."`, and the annotation flags
/// `read_only`, `destructive`, `idempotent`, `open_world` (alone for `true`, or `= false`).
///
/// The function itself is left unchanged, so tests can call it directly.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = syn::parse_macro_input!(attr with ToolOptions::parse_list);
    let function = syn::parse_macro_input!(item as ItemFn);
    match expand_tool(options, function) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Exports the listed `#[tool]` functions (paths are fine: `export_plugin!(a, text::b)`) as
/// the plugin's `capsule:plugin/tools` interface. Use it once per plugin crate, at its root.
///
/// It also defines `pub static CAPSULE_PLUGIN: capsule_sdk::Plugin`, the tool table, so tests
/// on the build machine can run `CAPSULE_PLUGIN.call(name, json)` exactly as the host would.
/// Two tools with the same name fail the build.
#[proc_macro]
pub fn export_plugin(input: TokenStream) -> TokenStream {
    let paths = syn::parse_macro_input!(input with Punctuated::<Path, Token![,]>::parse_terminated);
    expand_export(paths).into()
}

/// Prefix of the hidden type `#[tool]` puts beside each tool function.
const COMPANION_PREFIX: &str = "__capsule_tool_";

#[derive(Default)]
struct ToolOptions {
    name: Option<LitStr>,
    title: Option<LitStr>,
    read_only: Option<LitBool>,
    destructive: Option<LitBool>,
    idempotent: Option<LitBool>,
    open_world: Option<LitBool>,
}

impl ToolOptions {
    fn parse_list(input: ParseStream) -> syn::Result<Self> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
        let mut options = ToolOptions::default();
        for meta in metas {
            let key = meta
                .path()
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "name" => set_once(&mut options.name, string_value(&meta)?, &meta)?,
                "title" => set_once(&mut options.title, string_value(&meta)?, &meta)?,
                "read_only" => set_once(&mut options.read_only, flag_value(&meta)?, &meta)?,
                "destructive" => set_once(&mut options.destructive, flag_value(&meta)?, &meta)?,
                "idempotent" => set_once(&mut options.idempotent, flag_value(&meta)?, &meta)?,
                "open_world" => set_once(&mut options.open_world, flag_value(&meta)?, &meta)?,
                _ => {
                    return Err(syn::Error::new(
                        meta.path().span(),
                        "unknown tool option; expected one of: name = \"...\", title = \"...\", \
                         read_only, destructive, idempotent, open_world",
                    ));
                }
            }
        }
        Ok(options)
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, meta: &Meta) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(meta.span(), "this option is given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn string_value(meta: &Meta) -> syn::Result<LitStr> {
    if let Meta::NameValue(pair) = meta
        && let Expr::Lit(ExprLit {
            lit: Lit::Str(value),
            ..
        }) = &pair.value
    {
        return Ok(value.clone());
    }
    Err(syn::Error::new(
        meta.span(),
        "expected a string, as in `title = \"Word count\"`",
    ))
}

/// `read_only` alone means true; `read_only = false` states the opposite explicitly.
fn flag_value(meta: &Meta) -> syn::Result<LitBool> {
    match meta {
        Meta::Path(path) => Ok(LitBool::new(true, path.span())),
        Meta::NameValue(pair) => match &pair.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(value),
                ..
            }) => Ok(value.clone()),
            other => Err(syn::Error::new(
                other.span(),
                "expected `true` or `false`, or the flag alone",
            )),
        },
        Meta::List(list) => Err(syn::Error::new(
            list.span(),
            "expected the flag alone or `flag = true|false`",
        )),
    }
}

/// The MCP rule for tool names, checked at compile time so a bad name never reaches a host.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn doc_comment(function: &ItemFn) -> String {
    let mut lines = Vec::new();
    for attr in &function.attrs {
        if let Meta::NameValue(pair) = &attr.meta
            && pair.path.is_ident("doc")
            && let Expr::Lit(ExprLit {
                lit: Lit::Str(line),
                ..
            }) = &pair.value
        {
            let line = line.value();
            lines.push(
                line.strip_prefix(' ')
                    .unwrap_or(&line)
                    .trim_end()
                    .to_owned(),
            );
        }
    }
    lines.join("\n").trim().to_owned()
}

/// How a tool's `Ok` value becomes a result, decided from the type as written.
enum OutputKind {
    /// `String`, `&str`, `ToolOutput`, `Content`, `Vec<Content>`: converted by `IntoToolOutput`.
    Direct,
    /// Anything else: serialised as structured JSON with a derived output schema.
    Structured,
}

fn output_kind(ty: &Type) -> OutputKind {
    match ty {
        Type::Reference(reference) => output_kind(&reference.elem),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return OutputKind::Structured;
            };
            match last.ident.to_string().as_str() {
                "String" | "str" | "ToolOutput" | "Content" => OutputKind::Direct,
                "Vec" => match generic_types(&last.arguments).first() {
                    Some(inner) if matches!(output_kind(inner), OutputKind::Direct) => {
                        OutputKind::Direct
                    }
                    _ => OutputKind::Structured,
                },
                _ => OutputKind::Structured,
            }
        }
        _ => OutputKind::Structured,
    }
}

fn generic_types(arguments: &PathArguments) -> Vec<&Type> {
    match arguments {
        PathArguments::AngleBracketed(angle) => angle
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Splits `Result<T, E>` (any path ending in `Result`, including one-parameter aliases) into
/// `(T, true)`; any other type is an infallible `(T, false)`.
fn split_result(ty: &Type) -> (Type, bool) {
    if let Type::Path(path) = ty
        && path.qself.is_none()
        && let Some(last) = path.path.segments.last()
        && last.ident == "Result"
        && let Some(ok) = generic_types(&last.arguments).first()
    {
        return ((*ok).clone(), true);
    }
    (ty.clone(), false)
}

fn expand_tool(options: ToolOptions, function: ItemFn) -> syn::Result<TokenStream2> {
    let signature = &function.sig;
    if let Some(token) = &signature.asyncness {
        return Err(syn::Error::new(
            token.span(),
            "a tool must be a plain (not async) function",
        ));
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            signature.generics.span(),
            "a tool cannot be generic: its argument type decides its input schema",
        ));
    }
    if let Some(variadic) = &signature.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            "a tool cannot be variadic",
        ));
    }

    let fn_name = &signature.ident;
    let name = match &options.name {
        Some(name) => name.value(),
        None => fn_name.to_string().trim_start_matches("r#").to_owned(),
    };
    if !valid_tool_name(&name) {
        let span = options.name.as_ref().map_or(fn_name.span(), LitStr::span);
        return Err(syn::Error::new(
            span,
            format!(
                "tool name `{name}` is not allowed: use 1 to 64 ASCII letters, digits, `_` or `-`"
            ),
        ));
    }

    let description = doc_comment(&function);
    if description.is_empty() {
        return Err(syn::Error::new(
            fn_name.span(),
            "a tool needs a doc comment: it becomes the description a model reads to decide \
             when to call the tool (write `/// What it does, when to use it.` above the fn)",
        ));
    }

    let argument_type = match signature.inputs.len() {
        0 => None,
        1 => match signature.inputs.first() {
            Some(FnArg::Typed(typed)) => Some((*typed.ty).clone()),
            Some(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "a tool must be a free function, not a method",
                ));
            }
            None => None,
        },
        _ => {
            return Err(syn::Error::new(
                signature.inputs.span(),
                "a tool takes one argument: a struct deriving `Deserialize` and `JsonSchema` \
                 (its fields are the tool's parameters), or no argument at all",
            ));
        }
    };

    let return_type = match &signature.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                fn_name.span(),
                "a tool must return something the model can read: `String`, a struct deriving \
                 `Serialize` and `JsonSchema`, `ToolOutput`, or a `Result` of one of these",
            ));
        }
    };
    let (ok_type, fallible) = split_result(&return_type);

    let companion = format_ident!(
        "{}{}",
        COMPANION_PREFIX,
        fn_name.to_string().trim_start_matches("r#")
    );
    let visibility = &function.vis;
    let title = match &options.title {
        Some(title) => quote!(::core::option::Option::Some(::std::string::String::from(#title))),
        None => quote!(::core::option::Option::None),
    };
    let annotations = annotations_tokens(&options);

    let ok_span = ok_type.span();
    let (output_schema, convert) = match output_kind(&ok_type) {
        OutputKind::Direct => (
            quote_spanned!(ok_span=> <#ok_type as ::capsule_sdk::IntoToolOutput>::output_schema()),
            quote_spanned!(ok_span=> ::core::result::Result::Ok(<#ok_type as ::capsule_sdk::IntoToolOutput>::into_tool_output(value))),
        ),
        OutputKind::Structured => (
            quote_spanned!(ok_span=> ::core::option::Option::Some(::capsule_sdk::__private::output_schema::<#ok_type>(#name))),
            quote_spanned!(ok_span=> ::capsule_sdk::__private::structured::<#ok_type>(&value)),
        ),
    };

    let (input_schema, invoke) = match &argument_type {
        Some(ty) => (
            quote_spanned!(ty.span()=> ::capsule_sdk::__private::input_schema::<#ty>(#name)),
            quote_spanned!(ty.span()=> #fn_name(::capsule_sdk::__private::parse_arguments::<#ty>(arguments)?)),
        ),
        None => (
            quote!(::capsule_sdk::__private::empty_input_schema()),
            quote!({
                let _ = arguments;
                #fn_name()
            }),
        ),
    };
    let outcome = if fallible {
        quote_spanned!(return_type.span()=>
            match #invoke {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(error) => {
                    return ::core::result::Result::Err(::capsule_sdk::__private::tool_failed(error));
                }
            }
        )
    } else {
        invoke
    };

    Ok(quote! {
        #function

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #visibility struct #companion;

        #[doc(hidden)]
        impl #companion {
            pub const ENTRY: ::capsule_sdk::ToolEntry = ::capsule_sdk::ToolEntry::__new(
                #name,
                Self::definition,
                Self::call,
            );

            fn definition() -> ::capsule_sdk::ToolDefinition {
                ::capsule_sdk::ToolDefinition {
                    name: ::std::string::String::from(#name),
                    title: #title,
                    description: ::capsule_sdk::__private::description(#description),
                    input_schema: #input_schema,
                    output_schema: #output_schema,
                    annotations: #annotations,
                }
            }

            fn call(
                arguments: &str,
            ) -> ::core::result::Result<::capsule_sdk::ToolOutput, ::capsule_sdk::CallError> {
                let value = #outcome;
                #convert
            }
        }
    })
}

fn annotations_tokens(options: &ToolOptions) -> TokenStream2 {
    let flags = [
        &options.read_only,
        &options.destructive,
        &options.idempotent,
        &options.open_world,
    ];
    if flags.iter().all(|flag| flag.is_none()) {
        return quote!(::core::option::Option::None);
    }
    let [read_only, destructive, idempotent, open_world] = flags.map(|flag| match flag {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    });
    quote! {
        ::core::option::Option::Some(::capsule_sdk::ToolAnnotations {
            read_only: #read_only,
            destructive: #destructive,
            idempotent: #idempotent,
            open_world: #open_world,
        })
    }
}

fn expand_export(paths: Punctuated<Path, Token![,]>) -> TokenStream2 {
    if paths.is_empty() {
        return syn::Error::new(
            Span::call_site(),
            "list the plugin's tool functions, as in `export_plugin!(slugify, word_count)`",
        )
        .to_compile_error();
    }
    let entries = paths.iter().map(|path| {
        let mut companion = path.clone();
        if let Some(last) = companion.segments.last_mut() {
            let name = last.ident.to_string();
            last.ident = Ident::new(
                &format!("{COMPANION_PREFIX}{}", name.trim_start_matches("r#")),
                last.ident.span(),
            );
        }
        quote_spanned!(path.span()=> #companion::ENTRY)
    });
    quote! {
        /// Every tool this plugin exports, as listed in `export_plugin!`. Tests can call
        /// `CAPSULE_PLUGIN.call(name, json)` to run a tool the way the host does.
        #[allow(dead_code)]
        pub static CAPSULE_PLUGIN: ::capsule_sdk::Plugin = ::capsule_sdk::Plugin::new(&[#(#entries),*]);

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __CapsuleExport;

        #[cfg(target_arch = "wasm32")]
        impl ::capsule_sdk::__private::Guest for __CapsuleExport {
            fn list_tools() -> ::std::vec::Vec<::capsule_sdk::__private::WitTool> {
                ::capsule_sdk::__private::list_tools(&CAPSULE_PLUGIN)
            }

            fn call_tool(
                name: ::std::string::String,
                arguments: ::std::string::String,
            ) -> ::core::result::Result<
                ::capsule_sdk::__private::WitCallResult,
                ::capsule_sdk::__private::WitCallError,
            > {
                ::capsule_sdk::__private::call_tool(&CAPSULE_PLUGIN, &name, &arguments)
            }
        }

        #[cfg(target_arch = "wasm32")]
        ::capsule_sdk::__private::export!(__CapsuleExport);
    }
}

//! Property tests of JSON ⇄ WIT value conversion ([`super::value`]) against the derived
//! JSON Schema ([`super::schema`]), over arbitrary WIT types. Each case builds a real
//! component whose functions take generated types (records, variants, enums, flags,
//! lists, options, results, tuples and every scalar, nested), reads the types back from
//! wasmtime, and checks, for each type:
//!
//! - a value generated for the type is accepted by its schema, converts, and converts
//!   back to the same JSON and the same component value (round trip);
//! - arbitrary JSON, and that value with a random part replaced by arbitrary JSON, never
//!   panics the conversion, and converts whenever the schema accepts it.
//!
//! `PROPTEST_CASES` sets the number of cases (default 512, a few seconds); run longer
//! locally with e.g. `PROPTEST_CASES=2000 cargo test -p capsule --lib derived::proptests`.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::{Map, Value, json};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Type};
use wasmtime::{Config, Engine};

use super::{schema, value};
use crate::testing::proptest_config;

/// A WIT type, as generated. Names are positional: record fields `x-f0…`, variant cases
/// `c0…`, enum cases `e0…`, flags `g0…`.
#[derive(Debug, Clone)]
enum Ty {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    Option(Box<Ty>),
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
    Tuple(Vec<Ty>),
    Record(Vec<Ty>),
    Variant(Vec<Option<Ty>>),
    Enum(usize),
    Flags(usize),
}

fn arb_ty() -> impl Strategy<Value = Ty> {
    let leaf = prop_oneof![
        Just(Ty::Bool),
        Just(Ty::S8),
        Just(Ty::U8),
        Just(Ty::S16),
        Just(Ty::U16),
        Just(Ty::S32),
        Just(Ty::U32),
        Just(Ty::S64),
        Just(Ty::U64),
        Just(Ty::F32),
        Just(Ty::F64),
        Just(Ty::Char),
        Just(Ty::String),
        (1usize..5).prop_map(Ty::Enum),
        (1usize..5).prop_map(Ty::Flags),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Ty::List(Box::new(t))),
            inner.clone().prop_map(|t| Ty::Option(Box::new(t))),
            (
                proptest::option::of(inner.clone()),
                proptest::option::of(inner.clone())
            )
                .prop_map(|(ok, err)| Ty::Result(ok.map(Box::new), err.map(Box::new))),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Ty::Tuple),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Ty::Record),
            proptest::collection::vec(proptest::option::of(inner), 1..4).prop_map(Ty::Variant),
        ]
    })
}

/// The WIT spelling of `ty`; named types it needs are appended to `decls`.
fn render(ty: &Ty, decls: &mut Vec<String>) -> String {
    let named = |decls: &mut Vec<String>, kind: &str, body: String| {
        let name = format!("t{}", decls.len());
        decls.push(format!("{kind} {name} {{ {body} }}"));
        name
    };
    match ty {
        Ty::Bool => "bool".into(),
        Ty::S8 => "s8".into(),
        Ty::U8 => "u8".into(),
        Ty::S16 => "s16".into(),
        Ty::U16 => "u16".into(),
        Ty::S32 => "s32".into(),
        Ty::U32 => "u32".into(),
        Ty::S64 => "s64".into(),
        Ty::U64 => "u64".into(),
        Ty::F32 => "f32".into(),
        Ty::F64 => "f64".into(),
        Ty::Char => "char".into(),
        Ty::String => "string".into(),
        Ty::List(t) => format!("list<{}>", render(t, decls)),
        Ty::Option(t) => format!("option<{}>", render(t, decls)),
        Ty::Result(ok, err) => {
            let ok = ok.as_ref().map(|t| render(t, decls));
            let err = err.as_ref().map(|t| render(t, decls));
            match (ok, err) {
                (None, None) => "result".into(),
                (Some(ok), None) => format!("result<{ok}>"),
                (None, Some(err)) => format!("result<_, {err}>"),
                (Some(ok), Some(err)) => format!("result<{ok}, {err}>"),
            }
        }
        Ty::Tuple(ts) => {
            let items: Vec<String> = ts.iter().map(|t| render(t, decls)).collect();
            format!("tuple<{}>", items.join(", "))
        }
        Ty::Record(fields) => {
            let body: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, t)| format!("x-f{i}: {}", render(t, decls)))
                .collect();
            named(decls, "record", body.join(", "))
        }
        Ty::Variant(cases) => {
            let body: Vec<String> = cases
                .iter()
                .enumerate()
                .map(|(i, t)| match t {
                    Some(t) => format!("c{i}({})", render(t, decls)),
                    None => format!("c{i}"),
                })
                .collect();
            named(decls, "variant", body.join(", "))
        }
        Ty::Enum(n) => named(decls, "enum", names("e", *n).join(", ")),
        Ty::Flags(n) => named(decls, "flags", names("g", *n).join(", ")),
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&Config::new()).expect("engine"))
}

/// Builds a component exporting `f0(x: T0)`, `f1(x: T1)`, … and reads the parameter
/// types back from wasmtime, in order.
fn component_types(tys: &[Ty]) -> Vec<Type> {
    let mut decls = Vec::new();
    let funcs: Vec<String> = tys
        .iter()
        .enumerate()
        .map(|(i, t)| format!("f{i}: func(x: {});", render(t, &mut decls)))
        .collect();
    let wit = format!(
        "package fuzz:types;\ninterface types {{\n{}\n{}\n}}\nworld w {{ export types; }}\n",
        decls.join("\n"),
        funcs.join("\n")
    );
    let bytes = crate::testing::dummy_component(&wit, "w");
    let component = Component::new(engine(), bytes).expect("wasmtime accepts the component");
    let mut found: Vec<(usize, Type)> = Vec::new();
    for (_, export) in component.component_type().exports(engine()) {
        let ComponentItem::ComponentInstance(instance) = export.ty else {
            continue;
        };
        for (name, item) in instance.exports(engine()) {
            if let ComponentItem::ComponentFunc(func) = item.ty {
                let index = name[1..].parse().expect("f<index>");
                let (_, ty) = func.params().next().expect("one parameter");
                found.push((index, ty));
            }
        }
    }
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().map(|(_, t)| t).collect()
}

/// JSON of a value of type `ty`, in the canonical shape [`value::to_json`] produces.
fn arb_value(ty: &Ty) -> BoxedStrategy<Value> {
    match ty {
        Ty::Bool => any::<bool>().prop_map(Value::from).boxed(),
        Ty::S8 => any::<i8>().prop_map(Value::from).boxed(),
        Ty::U8 => any::<u8>().prop_map(Value::from).boxed(),
        Ty::S16 => any::<i16>().prop_map(Value::from).boxed(),
        Ty::U16 => any::<u16>().prop_map(Value::from).boxed(),
        Ty::S32 => any::<i32>().prop_map(Value::from).boxed(),
        Ty::U32 => any::<u32>().prop_map(Value::from).boxed(),
        Ty::S64 => any::<i64>().prop_map(Value::from).boxed(),
        Ty::U64 => any::<u64>().prop_map(Value::from).boxed(),
        Ty::F32 => any::<f32>()
            .prop_filter("JSON carries finite numbers", |f| f.is_finite())
            .prop_map(|f| json!(f64::from(f)))
            .boxed(),
        Ty::F64 => any::<f64>()
            .prop_filter("JSON carries finite numbers", |f| f.is_finite())
            .prop_map(|f| json!(f))
            .boxed(),
        Ty::Char => any::<char>().prop_map(|c| json!(c.to_string())).boxed(),
        Ty::String => any::<String>().prop_map(Value::from).boxed(),
        Ty::List(t) => proptest::collection::vec(arb_value(t), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Ty::Option(t) => prop_oneof![Just(Value::Null), arb_value(t)].boxed(),
        Ty::Result(ok, err) => {
            let arm = |name: &'static str, t: &Option<Box<Ty>>| {
                let payload = match t {
                    Some(t) => arb_value(t),
                    None => Just(Value::Null).boxed(),
                };
                payload.prop_map(move |v| json!({ name: v }))
            };
            prop_oneof![arm("ok", ok), arm("err", err)].boxed()
        }
        Ty::Tuple(ts) => ts
            .iter()
            .map(arb_value)
            .collect::<Vec<_>>()
            .prop_map(Value::Array)
            .boxed(),
        Ty::Record(fields) => fields
            .iter()
            .map(arb_value)
            .collect::<Vec<_>>()
            .prop_map(|values| {
                let object: Map<String, Value> = values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("x-f{i}"), v))
                    .collect();
                Value::Object(object)
            })
            .boxed(),
        Ty::Variant(cases) => Union::new(cases.iter().enumerate().map(|(i, t)| {
            let name = format!("c{i}");
            match t {
                Some(t) => arb_value(t)
                    .prop_map(move |v| json!({ name.clone(): v }))
                    .boxed(),
                None => Just(Value::String(name)).boxed(),
            }
        }))
        .boxed(),
        Ty::Enum(n) => (0..*n).prop_map(|i| json!(format!("e{i}"))).boxed(),
        Ty::Flags(n) => proptest::sample::subsequence((0..*n).collect::<Vec<_>>(), 0..=*n)
            .prop_shuffle()
            .prop_map(|set| json!(set.iter().map(|i| format!("g{i}")).collect::<Vec<_>>()))
            .boxed(),
    }
}

/// Any JSON, biased towards the names and shapes the generated types use.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "(x-f|c|e|g)[0-4]",
        Just("ok".to_string()),
        Just("err".to_string()),
        ".{0,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-300i32..300).prop_map(|n| json!(f64::from(n))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        key.clone().prop_map(Value::from),
        ".{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `json` with its `index`-th node (pre-order, modulo the node count) replaced by `with`.
fn mutate(json: &Value, index: usize, with: Value) -> Value {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 0,
        }
    }
    fn walk(v: &mut Value, target: &mut usize, with: &mut Option<Value>) {
        if *target == 0 {
            if let Some(with) = with.take() {
                *v = with;
            }
            return;
        }
        *target -= 1;
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, target, with)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, target, with)),
            _ => {}
        }
    }
    let mut out = json.clone();
    let mut target = index % count(json);
    walk(&mut out, &mut target, &mut Some(with));
    out
}

/// One generated type with values to try against it.
#[derive(Debug, Clone)]
struct Case {
    ty: Ty,
    valid: Vec<Value>,
    mutated: Vec<Value>,
    arbitrary: Vec<Value>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    arb_ty().prop_flat_map(|ty| {
        let values = proptest::collection::vec(arb_value(&ty), 1..6);
        let mutations =
            proptest::collection::vec((arb_value(&ty), any::<usize>(), arb_json()), 0..6);
        let arbitrary = proptest::collection::vec(arb_json(), 0..6);
        (Just(ty), values, mutations, arbitrary).prop_map(|(ty, valid, mutations, arbitrary)| {
            let mutated = mutations
                .into_iter()
                .map(|(v, i, with)| mutate(&v, i, with))
                .collect();
            Case {
                ty,
                valid,
                mutated,
                arbitrary,
            }
        })
    })
}

/// The properties, for one type `ty` (as wasmtime sees it) and its values.
fn check(case: &Case, ty: &Type) -> Result<(), TestCaseError> {
    let schema = schema::of(ty).map_err(|err| TestCaseError::fail(err.to_string()))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|err| TestCaseError::fail(format!("derived schema does not compile: {err}")))?;
    for json in &case.valid {
        prop_assert!(
            validator.is_valid(json),
            "the schema {schema} refuses {json}"
        );
        let val = value::from_json(json, ty, "x")
            .map_err(|err| TestCaseError::fail(format!("{json} does not convert: {err}")))?;
        let back = value::to_json(&val, "x").map_err(TestCaseError::fail)?;
        prop_assert_eq!(&back, json, "JSON round trip");
        let again = value::from_json(&back, ty, "x").map_err(TestCaseError::fail)?;
        prop_assert_eq!(again, val, "value round trip");
    }
    for json in case.mutated.iter().chain(&case.arbitrary) {
        let converted = value::from_json(json, ty, "x");
        if validator.is_valid(json) {
            prop_assert!(
                converted.is_ok(),
                "the schema {schema} accepts {json}, but it does not convert: {}",
                converted.unwrap_err()
            );
        }
        if let Ok(val) = converted {
            let back = value::to_json(&val, "x").map_err(TestCaseError::fail)?;
            prop_assert!(
                validator.is_valid(&back),
                "{json} converts to {back}, which the schema {schema} refuses"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(512))]

    #[test]
    fn json_and_component_values_agree_with_the_derived_schema(
        cases in proptest::collection::vec(arb_case(), 1..8)
    ) {
        let tys: Vec<Ty> = cases.iter().map(|c| c.ty.clone()).collect();
        let types = component_types(&tys);
        prop_assert_eq!(types.len(), cases.len());
        for (case, ty) in cases.iter().zip(&types) {
            check(case, ty)?;
        }
    }
}

/// What the property tests found, kept as plain tests so the fixes stay whatever the
/// generators do next.
mod seeded {
    use super::*;

    fn types(tys: &[Ty]) -> Vec<Type> {
        component_types(tys)
    }

    #[test]
    fn integers_written_with_a_zero_fraction_convert() {
        let [variant, u64_ty] = &types(&[Ty::Variant(vec![Some(Ty::S8)]), Ty::U64])[..] else {
            panic!("two types")
        };
        assert_eq!(
            value::from_json(&json!({"c0": 0.0}), variant, "x").map(|v| value::to_json(&v, "x")),
            Ok(Ok(json!({"c0": 0})))
        );
        assert_eq!(
            value::from_json(&json!(1e19), u64_ty, "x"),
            Ok(wasmtime::component::Val::U64(10_000_000_000_000_000_000))
        );
        // 2^64 is a whole number, but not a u64.
        assert_eq!(
            value::from_json(&json!(18_446_744_073_709_551_616.0), u64_ty, "x"),
            Err("x: expected an integer in the type's range, got 1.8446744073709552e+19".into())
        );
    }

    #[test]
    fn f32_values_beyond_its_range_are_refused_not_made_infinite() {
        let [list] = &types(&[Ty::List(Box::new(Ty::F32))])[..] else {
            panic!("one type")
        };
        let json = json!([-1.1528655328838096e254, 0.0]);
        assert_eq!(
            value::from_json(&json, list, "x"),
            Err("x[0]: expected a number within ±3.4028235e38 (the range of f32), got -1.1528655328838096e+254".into())
        );
        let schema = schema::of(list).unwrap();
        assert!(!jsonschema::validator_for(&schema).unwrap().is_valid(&json));
    }

    #[test]
    fn wrong_values_are_quoted_short() {
        let [ty] = &types(&[Ty::U8])[..] else {
            panic!("one type")
        };
        let err = value::from_json(&json!("x".repeat(1 << 20)), ty, "x").unwrap_err();
        assert_eq!(
            err,
            format!(
                "x: expected an integer in the type's range, got \"{}…",
                "x".repeat(199)
            )
        );
    }

    #[test]
    fn nested_options_collapse_to_none() {
        let [ty] = &types(&[Ty::Option(Box::new(Ty::Option(Box::new(Ty::U8))))])[..] else {
            panic!("one type")
        };
        assert_eq!(
            value::from_json(&Value::Null, ty, "x"),
            Ok(wasmtime::component::Val::Option(None))
        );
    }
}

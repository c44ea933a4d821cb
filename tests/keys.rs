//! Property tests of canonical parameter hashing.
use hhi::{ArtifactType, ParamSpec, PortSpec, Registry, StageContext, StageKind};
use proptest::prelude::*;
use std::path::Path;

struct Knobs;
impl StageKind for Knobs {
    fn name(&self) -> &'static str {
        "knobs"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "floats and ints"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::float("a", 0.0, ""),
            ParamSpec::float("b", 0.0, ""),
            ParamSpec::float("c", 0.0, ""),
            ParamSpec::int("n", 0, ""),
            ParamSpec::string("s", "", ""),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("o", ArtifactType::Blob, "")]
    }
    fn run(&self, _: &mut StageContext) -> anyhow::Result<()> {
        Ok(())
    }
}

fn key(lines: &[String]) -> hhi::store::hash::Digest {
    let mut r = Registry::empty();
    r.register(Knobs);
    let src = format!("[stages.k]\nkind = \"knobs\"\n{}\n", lines.join("\n"));
    let p = hhi::Pipeline::parse(Path::new("k.toml"), &src, &r)
        .unwrap_or_else(|e| panic!("{e}\n{src}"));
    let st = &p.stages[0];
    hhi::key::cache_key(
        st.kind.name(),
        st.kind.version(),
        &st.params.canonical(),
        [],
        st.seed,
    )
}

/// Ways to write one float in TOML.
fn spellings(x: f64) -> Vec<String> {
    let mut v = vec![format!("{x:e}"), format!("{x:E}"), format!("{x:?}")];
    let display = format!("{x}");
    v.push(display);
    if x.fract() == 0.0 && x.abs() < 1e15 {
        v.push(format!("{}", x as i64)); // an integer literal for a float param
        v.push(format!("{}.0", x as i64));
    }
    v
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1e6f64..1e6),
        (1e-12f64..1e-3),
        (-100i64..100).prop_map(|i| i as f64),
        Just(1e-5),
        Just(0.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn order_and_spelling_do_not_change_the_key(
        a in float(), b in float(), c in float(), n in any::<i32>(), s in "[a-z ]{0,8}",
        which in proptest::collection::vec(0usize..8, 3), order in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<usize> = (0..5).collect();
            for i in (1..v.len()).rev() { v.swap(i, rng.random_range(0..=i)); }
            v
        }),
    ) {
        let canonical = vec![format!("a = {a:?}"), format!("b = {b:?}"), format!("c = {c:?}"), format!("n = {n}"), format!("s = {s:?}")];
        let pick = |x: f64, i: usize| { let sp = spellings(x); sp[i % sp.len()].clone() };
        let respelled = [
            format!("a = {}", pick(a, which[0])),
            format!("b = {}", pick(b, which[1])),
            format!("c = {}", pick(c, which[2])),
            format!("n = {n}"),
            format!("s = {s:?}"),
        ];
        let shuffled: Vec<String> = order.iter().map(|&i| respelled[i].clone()).collect();
        prop_assert_eq!(key(&canonical), key(&shuffled));
    }

    #[test]
    fn any_value_change_changes_the_key(a in float(), b in float(), n in any::<i32>(), m in any::<i32>()) {
        let base = key(&[format!("a = {a:?}"), format!("n = {n}")]);
        if a != b {
            prop_assert_ne!(base, key(&[format!("a = {b:?}"), format!("n = {n}")]));
        }
        if n != m {
            prop_assert_ne!(base, key(&[format!("a = {a:?}"), format!("n = {m}")]));
        }
    }
}

#[test]
fn defaults_are_filled_in_before_hashing() {
    // Writing a parameter's default explicitly is the same stage.
    assert_eq!(
        key(&[]),
        key(&["a = 0.0".into(), "n = 0".into(), "s = \"\"".into()])
    );
    assert_ne!(key(&[]), key(&["a = 1e-5".into()]));
    assert_eq!(key(&["a = 1e-5".into()]), key(&["a = 0.00001".into()]));
}

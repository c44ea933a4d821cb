//! Shared by the model parity tests: reading fixtures written by tools/make_fixtures.py.
#![allow(dead_code)]

use burn::prelude::*;
use hhi::models::Cpu;
use serde_json::Value;
use std::path::PathBuf;

pub fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn expected(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir(name).join("expected.json")).unwrap()).unwrap()
}

pub fn dev() -> burn::backend::flex::FlexDevice {
    Default::default()
}

fn flatten(v: &Value, shape: &mut Vec<usize>, out: &mut Vec<f64>, depth: usize) {
    match v {
        Value::Array(a) => {
            if shape.len() == depth {
                shape.push(a.len());
            }
            for x in a {
                flatten(x, shape, out, depth + 1);
            }
        }
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        other => panic!("not a number: {other}"),
    }
}

pub fn floats<const D: usize>(v: &Value) -> Tensor<Cpu, D> {
    let (mut shape, mut out) = (Vec::new(), Vec::new());
    flatten(v, &mut shape, &mut out, 0);
    let data: Vec<f32> = out.into_iter().map(|x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), &dev())
}

pub fn ints<const D: usize>(v: &Value) -> Tensor<Cpu, D, Int> {
    let (mut shape, mut out) = (Vec::new(), Vec::new());
    flatten(v, &mut shape, &mut out, 0);
    let data: Vec<i64> = out.into_iter().map(|x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, shape), &dev())
}

pub fn id_rows(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

/// Largest absolute difference; panics if shapes differ.
pub fn max_abs_diff<const D: usize>(a: Tensor<Cpu, D>, b: Tensor<Cpu, D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).abs().max().into_scalar()
}

/// Logits parity with transformers, the tolerance the issue sets.
pub const TOL: f32 = 1e-4;

/// Saves a model twice into a temporary checkpoint folder (beside copies of the fixture's
/// `config.json` and, if any, `tokenizer.json`), asserts that both saves are byte-identical,
/// and returns the folder for reloading.
pub fn save_twice(
    fixture: &str,
    export: impl Fn() -> hhi::models::weights::Export,
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        if dir(fixture).join(f).exists() {
            std::fs::copy(dir(fixture).join(f), tmp.path().join(f)).unwrap();
        }
    }
    let path = tmp.path().join("model.safetensors");
    export().save(&path).unwrap();
    let first = std::fs::read(&path).unwrap();
    export().save(&path).unwrap();
    assert!(
        first == std::fs::read(&path).unwrap(),
        "saving {fixture} is not byte-deterministic"
    );
    tmp
}

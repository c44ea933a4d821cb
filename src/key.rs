//! Cache keys. A key is the BLAKE3 of a canonical JSON document holding exactly what can
//! change a stage's outputs: kind, implementation version, canonical parameters, the digest
//! of every input (edges and files alike) and the seed. Not the backend, timestamps or
//! paths, so a key is the same on every machine.

use crate::store::hash::Digest;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct KeyMaterial<'a> {
    format: &'static str,
    kind: &'a str,
    version: u32,
    params: &'a BTreeMap<String, String>,
    inputs: BTreeMap<&'a str, &'a Digest>,
    seed: u64,
}

pub fn cache_key<'a>(
    kind: &str,
    version: u32,
    params: &BTreeMap<String, String>,
    inputs: impl IntoIterator<Item = (&'a str, &'a Digest)>,
    seed: u64,
) -> Digest {
    let m = KeyMaterial {
        format: "hhi-key-v1",
        kind,
        version,
        params,
        inputs: inputs.into_iter().collect(),
        seed,
    };
    Digest::of_bytes(&serde_json::to_vec(&m).expect("key material serialises"))
}

//! Artifact types: what flows along the edges of a pipeline.
//!
//! Every artifact is stored as a file or a directory tree; the type is a promise about its
//! layout that the loader checks on every edge, so a summarizer cannot be wired where a
//! captioner is expected. `Blob` is an untyped file or folder (what `command` stages
//! produce); `Any` is accepted by inputs that take whatever they are given.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! artifact_types {
    ($($name:ident => $doc:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ArtifactType { $($name,)* }

        impl ArtifactType {
            pub const ALL: &'static [ArtifactType] = &[$(ArtifactType::$name,)*];
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name),)*];
            pub fn name(self) -> &'static str {
                match self { $(ArtifactType::$name => stringify!($name),)* }
            }
            pub fn doc(self) -> &'static str {
                match self { $(ArtifactType::$name => $doc,)* }
            }
        }
    };
}

artifact_types! {
    Any => "accepts any artifact (input ports only)",
    Blob => "an untyped file or folder",
    Text => "a UTF-8 text file",
    Corpus => "a text corpus: JSONL records with a `text` field",
    Captions => "image captions with persons masked as [NAME]",
    Interactions => "seed interactions, one per line, persons as [NAME]",
    SyntheticPairs => "(caption, interaction) pairs written by a language model",
    Tokenizer => "a Hugging Face tokenizer.json",
    CausalLm => "a causal language model checkpoint (config.json + safetensors + tokenizer)",
    Summarizer => "a sequence-to-sequence model checkpoint (T5)",
    ImageEncoder => "a CLIP checkpoint",
    NliModel => "an NLI classifier checkpoint (BART-MNLI)",
    PseudoLabels => "pseudo-labelled items with sample weights",
    ImageSet => "a folder of images with ids and captions",
    Features => "image features: features.safetensors ([n, d] f32) and index.jsonl ({source, id} per row)",
    Captioner => "an image captioner checkpoint (CLIP prefix + GPT-2)",
    Predictions => "top-k beam predictions per image, with scores",
    Metrics => "evaluation metrics as JSON",
    Report => "a human-readable report",
    Dataset => "a dataset folder in its original layout (e.g. a Who's Waldo tree)",
    Table => "benchmark items: a folder with items.jsonl (id, source, label, caption, image) and images/",
    Truth => "hidden ground truth of the toy world; read only by evaluation and diagnostics",
    Curve => "a training curve: JSONL of step, loss, lr",
    Stats => "summary statistics as one JSON object (funnels, acceptance rates, diagnostics)",
}

impl ArtifactType {
    /// Whether an output of type `from` may feed an input port of this type.
    pub fn accepts(self, from: ArtifactType) -> bool {
        self == ArtifactType::Any || self == from
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ArtifactType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ArtifactType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown artifact type `{s}`"))
    }
}

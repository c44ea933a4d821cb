//! Text handling: tokenizers, and the method's text rules: name lists and masking, a verb
//! lexicon, the stage-1 caption extractor, the acceptance filters of stages 2–4 and the
//! pseudo-label post-processing of stage 7, and the evaluation rules of stage 10 with the
//! word vectors its verb similarity reads (pure functions over strings).

pub mod captions;
pub mod diversity;
pub mod eval;
pub mod extract;
pub mod filters;
pub mod glove;
pub mod labels;
pub mod lexicon;
pub mod names;
pub mod ner;
pub mod tokenizer;

//! Images: decoding and CLIP's preprocessing.

pub mod preprocess;

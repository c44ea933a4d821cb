//! Images: decoding, CLIP's preprocessing, image sets and their feature files.

pub mod features;
pub mod images;
pub mod preprocess;

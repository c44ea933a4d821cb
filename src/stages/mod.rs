//! Built-in stage kinds, one file each. Register a new one in `Registry::builtin`.

pub mod command;
pub mod files;
pub mod reaper;
pub mod io;
pub mod toy_world;
pub mod import_whos_waldo;
pub mod train_tokenizer;
pub mod train_lm;
pub mod generate_interactions;
pub mod synthesize_captions;
pub mod filter_pairs;
pub mod train_summarizer;
pub mod pseudo_label;
pub mod import_wenda;
pub mod import_news;
pub mod import_imsitu;
pub mod extract_interactions;
pub mod postprocess_labels;
pub mod diagnose_labels;

/// The method's stage kinds (issue 11): the toy world, importers, the text stages and the
/// model stages. Called by `Registry::builtin`.
pub fn register_method(r: &mut crate::registry::Registry) {
    r.register(toy_world::ToyWorld);
    r.register(import_whos_waldo::ImportWhosWaldo);
    r.register(import_wenda::ImportWenda);
    r.register(import_news::ImportNews);
    r.register(import_imsitu::ImportImsitu);
    r.register(extract_interactions::ExtractInteractions);
    r.register(postprocess_labels::PostprocessLabels);
    r.register(diagnose_labels::DiagnoseLabels);
    r.register(train_tokenizer::TrainTokenizer);
    r.register(train_lm::TrainLm);
    r.register(generate_interactions::GenerateInteractions);
    r.register(synthesize_captions::SynthesizeCaptions);
    r.register(filter_pairs::FilterPairs);
    r.register(train_summarizer::TrainSummarizer);
    r.register(pseudo_label::PseudoLabelKind);
}

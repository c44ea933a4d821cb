//! Built-in stage kinds, one file each, listed in [`builtin`].

pub mod clip_features;
pub mod command;
pub mod diagnose_labels;
pub mod evaluate;
pub mod extract_interactions;
pub mod files;
pub mod filter_pairs;
pub mod generate_interactions;
pub mod import_imsitu;
pub mod import_news;
pub mod import_wenda;
pub mod import_whos_waldo;
pub mod io;
pub mod postprocess_labels;
pub mod predict;
pub mod pretrain_clip;
pub mod pseudo_label;
pub mod reaper;
pub mod report;
pub mod synthesize_captions;
pub mod toy_world;
pub mod train_captioner;
pub mod train_lm;
pub mod train_summarizer;
pub mod train_tokenizer;
pub mod training;

/// The method's stage kinds: the toy world, importers, the text stages, the vision stages,
/// the evaluation and the report. Part of [`builtin`].
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
    r.register(pretrain_clip::PretrainClip);
    r.register(clip_features::ClipFeatures);
    r.register(train_captioner::TrainCaptioner);
    r.register(predict::Predict);
    r.register(evaluate::Evaluate);
    r.register(report::Report);
}

/// A registry of every kind built into hhi: `files`, `command` and the method's kinds.
pub fn builtin() -> crate::registry::Registry {
    let mut r = crate::registry::Registry::empty();
    r.register(files::Files);
    r.register(command::Command);
    register_method(&mut r);
    r
}

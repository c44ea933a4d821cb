//! Progress reporting for long stages. The scheduler owns the terminal (an indicatif
//! `MultiProgress`); a stage only sees this handle, which is a no-op when hidden (tests,
//! pipes, `--quiet`).

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    pub(crate) fn from_bar(bar: ProgressBar) -> Self {
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<20} {msg} {elapsed}")
                .expect("static template is valid"),
        );
        // The ticker is a thread per bar: only worth it when something is drawn.
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Progress { bar }
    }

    /// Turns the spinner into a bar of `total` steps, counted in `unit`.
    pub fn start(&self, total: u64, unit: &str) {
        let template = format!(
            "{{spinner}} {{prefix:<20}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    pub fn set_message(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

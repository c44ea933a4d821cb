//! What the training stages share: starting from the work folder's checkpoint when a
//! killed run left one (model, optimizer state, step and loss curve), saving one every
//! `checkpoint_every` steps, and the final-loss figure.

use super::io::CurvePoint;
use crate::context::StageContext;
use crate::models::train::{load_checkpoint, save_checkpoint};
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use std::path::PathBuf;

/// A training run's state.
pub(crate) struct Run<M, O> {
    pub model: M,
    pub optim: O,
    pub step: u64,
    pub curve: Vec<CurvePoint>,
    /// The checkpoint folder (`<work>/<name>`).
    pub dir: PathBuf,
    pub total: u64,
    pub every: u64,
}

impl<M, O> Run<M, O> {
    /// Resumes from `<work>/<name>` or starts from `fresh()`; starts the progress bar.
    pub(crate) fn start<AD>(
        ctx: &StageContext,
        name: &str,
        total: u64,
        fresh: impl Fn() -> anyhow::Result<M>,
        optim: impl Fn() -> O,
        dev: &AD::Device,
    ) -> anyhow::Result<Self>
    where
        AD: AutodiffBackend,
        M: AutodiffModule<AD>,
        O: Optimizer<M, AD>,
    {
        let dir = ctx.work_dir().join(name);
        std::fs::create_dir_all(&dir)?;
        let (model, optim, step) = match load_checkpoint(&dir, fresh()?, optim(), dev)? {
            Some(s) => s,
            None => (fresh()?, optim(), 0),
        };
        let mut curve: Vec<CurvePoint> = ctx.load_checkpoint("curve")?.unwrap_or_default();
        curve.retain(|c| c.step < step);
        if step > 0 {
            tracing::info!("{name}: resuming at step {step} of {total}");
        }
        ctx.progress().start(total, "steps");
        ctx.progress().set_position(step);
        Ok(Run {
            model,
            optim,
            step,
            curve,
            dir,
            total,
            every: ctx.params.int("checkpoint_every") as u64,
        })
    }

    /// Records a finished step (its loss and learning rate) and checkpoints when due.
    pub(crate) fn stepped<AD>(
        &mut self,
        ctx: &StageContext,
        loss: f64,
        lr: f64,
    ) -> anyhow::Result<()>
    where
        AD: AutodiffBackend,
        M: AutodiffModule<AD>,
        O: Optimizer<M, AD>,
    {
        self.curve.push(CurvePoint {
            step: self.step,
            loss,
            lr,
        });
        self.step += 1;
        ctx.progress().set_position(self.step);
        if self.step.is_multiple_of(self.every) && self.step < self.total {
            ctx.save_checkpoint("curve", &self.curve)?;
            save_checkpoint(&self.dir, &self.model, &self.optim, self.step)?;
        }
        Ok(())
    }

    /// The mean loss of the last `n` steps, `None` before any step.
    pub(crate) fn final_loss(&self, n: usize) -> Option<f64> {
        let tail = &self.curve[self.curve.len().saturating_sub(n.max(1))..];
        (!tail.is_empty()).then(|| tail.iter().map(|c| c.loss).sum::<f64>() / tail.len() as f64)
    }
}

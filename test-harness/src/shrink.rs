//! Delta debugging over a failing run's steps: cut chunks out while the same kind of
//! violation still happens, halving the chunks when no cut works.

use crate::action::Step;
use crate::config::SimConfig;
use crate::runner::simulate;
use crate::trace::Trace;

/// The step at which `steps` fails with `kind`, if it does.
fn fails_with(cfg: &SimConfig, steps: &[Step], kind: &str) -> Option<usize> {
    simulate(cfg, Some(steps), Trace::off()).violation.filter(|v| v.kind == kind).map(|v| v.step)
}

/// A shorter list of steps that still fails with `kind`, trying at most `max_runs` runs:
/// sweeps cutting chunks of half the length, then a quarter, … down to single steps,
/// then single steps again until a sweep cuts nothing.
pub fn shrink(cfg: &SimConfig, steps: &[Step], kind: &str, max_runs: usize) -> Vec<Step> {
    let mut best = steps.to_vec();
    match fails_with(cfg, &best, kind) {
        Some(at) => best.truncate(at + 1),
        None => return best,
    }
    let mut runs = 1;
    let mut chunk = (best.len() / 2).max(1);
    while runs < max_runs && best.len() > 1 {
        let mut start = 0;
        let mut cut_any = false;
        while start < best.len() && runs < max_runs {
            let end = (start + chunk).min(best.len());
            let candidate: Vec<Step> = best[..start].iter().chain(&best[end..]).cloned().collect();
            runs += 1;
            match fails_with(cfg, &candidate, kind) {
                Some(at) => {
                    best = candidate;
                    best.truncate(at + 1);
                    cut_any = true;
                }
                None => start = end,
            }
        }
        if chunk == 1 && !cut_any {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    best
}

//! Running per-image work on a pool of workers while results come out in
//! input order, with a progress bar.

use indicatif::ProgressBar;
use rayon::prelude::*;

/// Applies `work` to every item on `workers` threads, in chunks, and hands
/// each result to `emit` in input order as soon as its chunk is done, with
/// the progress bar suspended so printed lines do not tear it.
pub fn in_order<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    bar: &ProgressBar,
    work: impl Fn(&T) -> R + Sync,
    mut emit: impl FnMut(&T, R),
) -> anyhow::Result<()> {
    let workers = workers.max(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;
    for chunk in items.chunks(workers * 4) {
        let results: Vec<R> = pool.install(|| {
            chunk
                .par_iter()
                .map(|item| {
                    let r = work(item);
                    bar.inc(1);
                    r
                })
                .collect()
        });
        bar.suspend(|| chunk.iter().zip(results).for_each(|(item, r)| emit(item, r)));
    }
    bar.finish_and_clear();
    Ok(())
}

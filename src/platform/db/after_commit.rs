//! Work that waits for the commit of the write that asked for it (the metrics of
//! committed grants and spends): queued on the writer thread, run after a successful
//! group commit, forgotten when its job fails or the batch does not commit.

use std::cell::RefCell;

/// Work to do once the write running now has been committed (metrics counted only for
/// what is durable). Outside the writer thread `f` is dropped; in a job that fails, or a
/// batch that does not commit, it never runs.
pub fn after_commit(f: impl FnOnce() + 'static) {
    AFTER_COMMIT.with(|pending| {
        if let Some(pending) = pending.borrow_mut().as_mut() {
            pending.push(Box::new(f));
        }
    });
}

/// One piece of after-commit work.
type Work = Box<dyn FnOnce()>;

thread_local! {
    /// `Some` on the writer thread only: the current batch's after-commit work.
    static AFTER_COMMIT: RefCell<Option<Vec<Work>>> = const { RefCell::new(None) };
}

/// How much after-commit work is queued, to forget what a failed job queued.
pub(super) fn after_commit_len() -> usize {
    AFTER_COMMIT.with(|p| p.borrow().as_ref().map_or(0, Vec::len))
}

/// Runs (`committed`) or forgets the queued after-commit work from position `from` on.
pub(super) fn settle_after_commit(from: usize, committed: bool) {
    let work = AFTER_COMMIT.with(|p| match p.borrow_mut().as_mut() {
        Some(pending) if from < pending.len() => pending.split_off(from),
        _ => Vec::new(),
    });
    if committed {
        work.into_iter().for_each(|f| f());
    }
}

/// Makes `after_commit` queue work on this thread (the writer's).
pub(super) fn enable_on_this_thread() {
    AFTER_COMMIT.with(|p| *p.borrow_mut() = Some(Vec::new()));
}

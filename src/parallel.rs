//! Threads for one call: how many ([`threads_for`], the one place that decides), a pool
//! owned by the call (never rayon's global pool) and the rule that makes results
//! independent of the thread count: work is cut into chunks whose
//! boundaries depend only on the problem's shape, and every reduction runs in chunk order.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// How the current call may run its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Par {
    /// On the calling thread, one chunk after the other.
    Sequential,
    /// On the threads of the rayon pool the call runs in.
    Rayon,
    /// On the two threads of the fit's [`crate::team::Team`] (its small steps), each
    /// piece on one thread: products inside a piece take no other threads.
    Team,
}

impl Par {
    /// Runs `f(i)` for every chunk index `i < n`, stopping at an error (which one is
    /// returned when several chunks fail is unspecified).
    pub fn try_for_each<E: Send>(
        self,
        n: usize,
        f: impl Fn(usize) -> std::result::Result<(), E> + Send + Sync,
    ) -> std::result::Result<(), E> {
        match self {
            Par::Rayon if n > 1 => (0..n).into_par_iter().try_for_each(f),
            Par::Team if n > 1 => crate::team::try_for_each(n, f),
            _ => (0..n).try_for_each(f),
        }
    }
}

/// Steps (a mini-batch, a block of rows) of fewer multiply-adds than this run on one
/// thread: a pool would only add its start-up and synchronisation.
pub(crate) const MIN_THREADED_WORK: usize = 1 << 20;

/// THE thread policy, for every fit, loss evaluation and prediction: the threads that
/// `n_jobs` asks for ([`requested_threads`]), but one when a step of the call has less
/// than [`MIN_THREADED_WORK`] multiply-adds (`step_work`), and never more than the call
/// has independent pieces of work (`pieces`).
pub fn threads_for(n_jobs: Option<i64>, step_work: usize, pieces: usize) -> Result<usize> {
    let requested = requested_threads(n_jobs)?;
    Ok(if step_work < MIN_THREADED_WORK {
        1
    } else {
        requested.min(pieces.max(1))
    })
}

/// [`threads_for`] of a fit whose batches are cut into two halves of hidden units
/// (`split.rs`, which takes only batches under [`MIN_THREADED_WORK`] but worth two
/// halves): the threads `n_jobs` asks for, at most two.
pub(crate) fn threads_for_halves(n_jobs: Option<i64>) -> Result<usize> {
    Ok(requested_threads(n_jobs)?.min(2))
}

/// The threads `n_jobs` asks for, as scikit-learn estimators read it: None follows
/// `OMP_NUM_THREADS` when it is set (joblib's workers set it to their share of the
/// cores, so that a grid search does not oversubscribe) and means every core otherwise;
/// -1 is every core, -2 all but one (joblib's convention), k > 0 exactly k.
pub fn requested_threads(n_jobs: Option<i64>) -> Result<usize> {
    match n_jobs {
        None => Ok(omp_num_threads().unwrap_or_else(cores)),
        Some(-1) => Ok(cores()),
        Some(0) => Err(Error::Value("n_jobs == 0 has no meaning".into())),
        Some(k) if k > 0 => Ok(k as usize),
        Some(k) => Ok((cores() as i64 + 1 + k).max(1) as usize),
    }
}

/// `OMP_NUM_THREADS` when it holds an integer (at least 1 thread), as joblib sets it.
fn omp_num_threads() -> Option<usize> {
    let value = std::env::var("OMP_NUM_THREADS").ok()?;
    let k: i64 = value.trim().parse().ok()?;
    Some(k.max(1) as usize)
}

/// The cores this process may use, read once: the standard library reads cgroup files
/// for it, ~0.1 ms per call here, which a small fit would pay every time.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `f` with `threads` threads: directly when one is enough, else inside a pool that
/// is this call's alone while it runs (a fit: for the whole fit). The pool is one a
/// finished call left ([`take_pool`]) or a new one: starting two threads and joining them
/// cost ~0.3 ms a call, a quarter of a `partial_fit` of 500 rows.
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce(Par) -> R + Send) -> Result<R> {
    if threads <= 1 {
        return Ok(f(Par::Sequential));
    }
    with_pool(threads, |pool| pool.install(|| f(Par::Rayon)))
}

/// Runs `f` with a pool of `threads` threads that is this call's alone while `f` runs
/// (see [`with_threads`]): for a caller that hands the pool work and waits its own way.
pub fn with_pool<R>(threads: usize, f: impl FnOnce(&rayon::ThreadPool) -> R) -> Result<R> {
    let pool = take_pool(threads)?;
    // (a panic of `f` passes through here, and the pool is dropped, not kept)
    let out = f(&pool);
    keep_pool(threads, pool);
    Ok(out)
}

/// Pools of finished [`with_threads`] calls: the process that made them, their thread
/// count and the pool, whose threads sleep until a call takes it.
type IdlePools = Vec<(u32, usize, rayon::ThreadPool)>;

static IDLE_POOLS: Mutex<IdlePools> = Mutex::new(Vec::new());

/// Most pools of one size kept idle: as many as calls that ran at once (fits from
/// several Python threads, or a fit started by another's callback), up to this bound.
const MAX_IDLE_POOLS: usize = 4;

/// An idle pool of `threads` threads of this process, taken out of the list (so that no
/// other call shares it: a fit's team keeps a worker busy for the whole fit), or a new
/// one.
fn take_pool(threads: usize) -> Result<rayon::ThreadPool> {
    let pid = std::process::id();
    let mut idle = IDLE_POOLS.lock().unwrap_or_else(|e| e.into_inner());
    forget_other_processes(&mut idle, pid);
    match idle.iter().position(|(p, t, _)| *p == pid && *t == threads) {
        Some(i) => Ok(idle.swap_remove(i).2),
        None => {
            drop(idle);
            new_pool(threads)
        }
    }
}

/// Puts `pool` back for the next call (dropped when enough are kept).
fn keep_pool(threads: usize, pool: rayon::ThreadPool) {
    let mut idle = IDLE_POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if idle.iter().filter(|(_, t, _)| *t == threads).count() < MAX_IDLE_POOLS {
        idle.push((std::process::id(), threads, pool));
    }
}

/// Drops from `pools` those of a parent process (before a fork), which have no threads
/// in this one: forgotten, never joined.
fn forget_other_processes<P>(pools: &mut Vec<(u32, usize, P)>, pid: u32) {
    for (_, _, pool) in pools.extract_if(.., |(p, _, _)| *p != pid) {
        std::mem::forget(pool);
    }
}

/// [`with_threads`] in a pool kept for the process (one per thread count) rather than
/// started per call: for the short calls made many times (predictions, the L-BFGS
/// objective), where starting threads (~0.1-0.2 ms) would cost more than the work.
/// A process forked after the pool started (whose copy has no worker threads) starts
/// its own.
pub fn with_shared_threads<R: Send>(threads: usize, f: impl FnOnce(Par) -> R + Send) -> Result<R> {
    if threads <= 1 {
        return Ok(f(Par::Sequential));
    }
    let pool = shared_pool(threads)?;
    Ok(pool.install(|| f(Par::Rayon)))
}

/// [`with_shared_threads`] for a call of two threads whose pieces (blocks of rows) this
/// thread computes too, with a worker of the process's pool as its helper
/// ([`crate::team::with_team_in`]): one worker to wake instead of two in a row.
pub fn with_shared_team<R>(threads: usize, f: impl FnOnce(Par) -> R + Send) -> Result<R>
where
    R: Send,
{
    if threads != 2 {
        return with_shared_threads(threads, f);
    }
    let pool = shared_pool(threads)?;
    Ok(crate::team::with_serving_team(&pool, || {
        // In a spell alone, the call runs as with one thread: a prediction then takes
        // its rows as one block where that gives the same bits (one copy of the
        // weights into `gemm`'s panels instead of one per block).
        f(if crate::team::runs_alone() {
            Par::Sequential
        } else {
            Par::Team
        })
    }))
}

fn new_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("mlp_rs-{i}"))
        .build()
        .map_err(|e| Error::Value(format!("could not start {threads} threads: {e}")))
}

/// The process's pool of `threads` threads, made at first use.
fn shared_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    type Pools = Vec<(u32, usize, Arc<rayon::ThreadPool>)>;
    static POOLS: Mutex<Pools> = Mutex::new(Vec::new());
    let pid = std::process::id();
    // (a panic elsewhere cannot leave the list half-changed: it is only pushed to)
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, pool)) = pools.iter().find(|(p, t, _)| *p == pid && *t == threads) {
        return Ok(Arc::clone(pool));
    }
    forget_other_processes(&mut pools, pid);
    let pool = Arc::new(new_pool(threads)?);
    pools.push((pid, threads, Arc::clone(&pool)));
    Ok(pool)
}

/// Decides, step by step (a fit's mini-batches), whether a step runs on the pool's
/// threads or on one of them alone, by the time steps take. On a machine whose other
/// cores are busy, a thread of the pool is descheduled now and then, and every step
/// waits for it: two threads can be slower than one. Steps are cut by their shapes
/// alone, whoever computes them: the choice changes speed, never results.
///
/// Parallel steps on a quiet machine take about the same time each; a step much
/// slower than the fastest of its window (a stall) is the mark of a descheduled
/// thread. After a few stalls the governor probes one thread for a while (long enough
/// to span several scheduler time slices) and keeps the faster way. On one thread it
/// probes the pool again after an interval that doubles while one thread stays faster.
/// A quiet machine has no stalls, so it never probes, and pays nothing.
///
/// A team's steps ([`Par::Team`]) are left alone: they take tens of microseconds, so
/// any interrupt or page fault made a stall, and the probes they started ran 3-10 % of
/// W5's batches on one thread on a quiet machine (its epochs 5-10 % slower); the team
/// watches its helper itself, job by job (`team.rs`).
#[derive(Debug)]
pub(crate) struct Governor {
    /// The call's threads (the way of its parallel steps)...
    threads: Par,
    parallel: bool,
    /// The steps of the current way since the last decision...
    window: Window,
    /// ...and of the other way while it is probed.
    probe: Option<Window>,
    /// Seconds of the current way before the next probe: on one thread, until the
    /// pool is tried again; on the pool, at least between two probes.
    interval: f64,
}

/// Steps timed in one way.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    steps: u32,
    seconds: f64,
    fastest: f64,
    stalls: u32,
}

impl Window {
    fn add(&mut self, seconds: f64) {
        if self.steps == 0 || seconds < self.fastest {
            self.fastest = seconds;
        }
        if seconds > STALL * self.fastest {
            self.stalls += 1;
        }
        self.steps += 1;
        self.seconds += seconds;
    }

    fn mean(&self) -> f64 {
        self.seconds / f64::from(self.steps.max(1))
    }
}

/// A step this many times slower than the fastest of its window is a stall...
const STALL: f64 = 3.0;
/// ...and this many stalls start a probe of one thread.
const STALLS: u32 = 2;
/// A probe lasts at least this long (several scheduler time slices) and this many steps.
const PROBE_SECONDS: f64 = 0.02;
const PROBE_STEPS: u32 = 4;
/// The first interval between probes, doubling up to the longest.
const FIRST_INTERVAL: f64 = 0.02;
const LONGEST_INTERVAL: f64 = 5.0;

impl Governor {
    /// A governor for a call on `par`'s threads.
    pub(crate) fn new(par: Par) -> Self {
        Self {
            threads: par,
            parallel: true,
            window: Window::default(),
            probe: None,
            interval: FIRST_INTERVAL,
        }
    }

    /// How the next step runs.
    pub(crate) fn par(&self) -> Par {
        let parallel = self.parallel != self.probe.is_some();
        if parallel {
            self.threads
        } else {
            Par::Sequential
        }
    }

    /// The seconds the last step took (call only for steps of full size).
    pub(crate) fn record(&mut self, seconds: f64) {
        if matches!(self.threads, Par::Sequential | Par::Team) {
            return;
        }
        if let Some(probe) = self.probe.as_mut() {
            probe.add(seconds);
            if probe.seconds >= PROBE_SECONDS && probe.steps >= PROBE_STEPS {
                let probed = probe.mean();
                self.decide(probed);
            }
            return;
        }
        self.window.add(seconds);
        let due = self.window.seconds >= self.interval;
        let stalled = self.window.stalls >= STALLS;
        if due && (stalled || !self.parallel) {
            self.probe = Some(Window::default());
        }
    }

    fn decide(&mut self, probed: f64) {
        self.probe = None;
        let switch = probed < 0.9 * self.window.mean();
        if switch {
            self.parallel = !self.parallel;
            self.interval = FIRST_INTERVAL;
        } else {
            self.interval = (self.interval * 2.0).min(LONGEST_INTERVAL);
        }
        self.window = Window::default();
    }
}

/// A raw pointer that may cross threads: each chunk touches a disjoint region.
pub(crate) struct SendPtr<T>(pub *mut T);
// By hand: derives would require `T: Copy`.
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// Through a method, so closures capture the wrapper (which is Send), not the field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call takes the pool a finished call of its size left, and a call made while
    /// another holds a pool (a fit started by a fit's callback) gets one of its own.
    /// (Five threads: a size no other test asks for, which could take the kept pool.)
    #[test]
    fn pools_are_kept_for_the_next_call_and_never_shared() {
        let threads_of = |pool: &rayon::ThreadPool| {
            let mut ids = pool.broadcast(|_| format!("{:?}", std::thread::current().id()));
            ids.sort();
            ids
        };
        let first = with_pool(5, threads_of).unwrap();
        let again = with_pool(5, threads_of).unwrap();
        assert_eq!(first, again);
        let (outer, inner) = with_pool(5, |pool| {
            let inner = with_pool(5, threads_of).unwrap();
            (threads_of(pool), inner)
        })
        .unwrap();
        assert_eq!(outer, first);
        assert!(inner.iter().all(|id| !outer.contains(id)));
        // both are kept now: two calls at once take one each
        let (a, b) = with_pool(5, |p| (threads_of(p), with_pool(5, threads_of).unwrap())).unwrap();
        assert_ne!(a, b);
        assert!([&a, &b].iter().all(|ids| **ids == outer || **ids == inner));
    }

    /// Steps whose seconds `parallel(i)` / `sequential` gives: how many ran on the pool,
    /// and the way the governor ends on.
    fn settle(parallel: impl Fn(usize) -> f64, sequential: f64, steps: usize) -> (usize, Par) {
        let mut g = Governor::new(Par::Rayon);
        let mut parallel_steps = 0;
        for i in 0..steps {
            let par = g.par();
            if par == Par::Rayon {
                parallel_steps += 1;
            }
            g.record(if par == Par::Rayon {
                parallel(i)
            } else {
                sequential
            });
        }
        (parallel_steps, g.par())
    }

    #[test]
    fn keeps_the_faster_way_and_probes_only_when_it_may_pay() {
        // quiet: steady parallel steps (0.5 ms), no stall, never a probe
        let (parallel, now) = settle(|_| 0.0005, 0.0009, 3000);
        assert_eq!((parallel, now), (3000, Par::Rayon));
        // loaded: a 10 ms stall every fifth step; one thread (0.9 ms) is faster
        let stalls = |i: usize| if i.is_multiple_of(5) { 0.010 } else { 0.0005 };
        let (parallel, now) = settle(stalls, 0.0009, 3000);
        assert_eq!(now, Par::Sequential);
        assert!(parallel < 300, "{parallel}");
        // rare stalls that do not make one thread faster: back to the pool after a probe
        let rare = |i: usize| if i.is_multiple_of(50) { 0.004 } else { 0.0005 };
        let (parallel, now) = settle(rare, 0.0009, 3000);
        assert_eq!(now, Par::Rayon);
        assert!(parallel > 2700, "{parallel}");
        // no threads: always sequential
        let mut g = Governor::new(Par::Sequential);
        g.record(1.0);
        assert_eq!(g.par(), Par::Sequential);
        // a team's steps stay on the team, stalls or not (the team watches its helper)
        let mut g = Governor::new(Par::Team);
        for i in 0..3000 {
            assert_eq!(g.par(), Par::Team);
            g.record(stalls(i) / 10.0);
        }
    }
}

//! A team of two threads for the steps of a fit (two halves of a hidden layer, the
//! parts of a batch, a few update chunks), where a rayon fork-join costs much of what
//! the step saves: rayon's idle worker sleeps between a batch's phases and wakes too
//! late, and the first thread then runs every piece itself (`bench/profile.md`, W1 and
//! W5; C1's batches of two 100-row parts lost ~5 % to the wake-ups). Predictions use
//! it too, so that their calling thread computes instead of waiting for two workers
//! to wake.
//!
//! The calling thread and one helper, a worker of the call's rayon pool, share each
//! job's pieces: the caller takes them from the front, the helper from the back, so
//! with two pieces each thread keeps its own (its half's tensors stay in its core's
//! cache). The helper spins between jobs for a while ([`SPIN`]), then sleeps until the
//! next job. A piece is claimed before it runs, so the caller never waits for a piece
//! nobody has started: when the helper is asleep, descheduled or not started yet, the
//! caller runs the whole job alone. Which thread runs a piece never changes what it computes.

use crate::affinity::{self, Away};
use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::thread::{self, Thread, ThreadId};
use std::time::{Duration, Instant};

/// How long the helper spins for the next job before it sleeps: longer than the gaps
/// between the phases and batches of a fit (microseconds), shorter than a scheduler
/// time slice, so that an idle helper costs a busy machine little.
const SPIN: Duration = Duration::from_micros(50);

/// How long the serving team's helper spins after a call ([`with_serving_team`]):
/// past the gaps of calls made in a loop or close together (predictions of 100 rows
/// 0.1 ms apart: 182 -> 142 us a call with 250 us, against 200 us with 50).
const SERVING_SPIN: Duration = Duration::from_micros(250);

/// Spins of the caller waiting for the helper's pieces before it yields its core (a
/// helper descheduled mid-piece may be waiting for this very core).
const WAIT_SPINS: u32 = 1 << 14;

/// The helper is not keeping up when in a window of [`WINDOW`] jobs it took no piece
/// of at least half, or twice the caller waited for its pieces longer than
/// [`LONG_WAIT`] and than it worked on the job itself: its core is shared with another
/// process, which the scheduler runs there in turns. (Once, or a wait shorter than the
/// caller's own work, is not enough: a quiet host's vCPU stalls now and then for a few
/// hundred microseconds, which sent C1's float64 fit, pieces of ~300 us, into spells
/// alone that grew to the whole fit, 0.36 s per epoch instead of 0.23.)
/// A helper that then keeps spinning is a third busy thread on two cores, which slows
/// the caller itself, and is cut off in the middle of its pieces (W1 beside a busy
/// process: 0.19 s against 0.165 s on one thread). So the caller runs the jobs alone
/// for a spell ([`FIRST_SOLO`], twice as long after each spell that ends the same way,
/// up to [`LONGEST_SOLO`]), and the helper, given no job, sleeps.
const WINDOW: u32 = 16;
const LONG_WAIT: Duration = Duration::from_micros(200);
const FIRST_SOLO: Duration = Duration::from_millis(20);
const LONGEST_SOLO: Duration = Duration::from_secs(2);

/// Two threads can be slower than one without the helper ever lagging: on a host that
/// runs the two vCPUs on the two hyperthreads of one core (cloud VMs of two vCPUs
/// often do; the AMD host behaved so in some phases), each thread gets about half the
/// core and both work slowly, the caller as much as the helper (W7, 5,000 jobs of
/// ~90 us: 1.0-1.35 s a fit in such phases, the caller's own work 2.2x its usual,
/// against 0.65 s on one thread). So the caller now and then runs [`PROBE_JOBS`] jobs
/// alone and compares their time with that of the [`PROBE_JOBS`] jobs before them, run
/// with the helper. When alone was faster, it probes again one window later, and when
/// that probe finds the same it runs alone for a spell, then probes again one window
/// after it (one probe could be fooled: a window of tiny jobs, C4's ~4 us, is doubled
/// by one interrupt). A healthy pair's probes find alone 1.2-2.2x slower (W7, C4); in
/// the slow phases, alone took 0.6-0.9 of the team's time (a first rule of under 4/5
/// lost most verdict pairs to the ones in 0.8-0.9). (12 jobs: whole batches of two, three or four jobs.) A
/// probe comes after [`FIRST_PROBE`] windows of a team's first jobs (past the first
/// batches' page faults, which made a first probe after 4 windows find alone faster),
/// then every [`PROBE_PERIOD`] windows: a probe costs about a window's work (W7: 0.5
/// ms of a 0.5 s fit, three probes).
const PROBE_JOBS: u32 = 12;
const FIRST_PROBE: u32 = 16;
const PROBE_PERIOD: u32 = 170;

/// A job has at most this many pieces (the claims word holds 16-bit counters).
const MAX_PIECES: usize = u16::MAX as usize;

/// One job: its pieces, run by reference from both threads.
struct Job<'a> {
    piece: &'a (dyn Fn(usize) + Sync),
}

/// What the two threads share.
struct Shared {
    /// The current job's number (32 bits), its next piece from the front and its end
    /// (16 bits each): pieces `front..back` are unclaimed.
    claims: AtomicU64,
    /// The current job, valid while any of its pieces is unclaimed or running.
    job: AtomicPtr<Job<'static>>,
    /// Pieces of the current job the helper has finished.
    done: AtomicUsize,
    /// The helper is asleep (or about to be) and needs an unpark for the next job.
    sleeping: AtomicBool,
    stop: AtomicBool,
    /// A panic of a piece on the helper, passed on to the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The helper's thread, once it runs (to wake it; the jobs before it has started
    /// are not its misses).
    helper: OnceLock<Thread>,
    /// The CPU the caller ran on when it published the current job (`usize::MAX`:
    /// unknown), which the helper leaves ([`Away`]).
    caller_cpu: AtomicUsize,
    /// The helper was found not keeping up: its CPU is busy with other work, so it
    /// goes back to the caller's and no longer leaves it (tied to a busy CPU, it
    /// stalled the fit's steps: C1 beside a busy process took 1.07-1.12 of one
    /// thread's time, against 1.00-1.05 where the scheduler placed it).
    stay: AtomicBool,
    /// The thread that leads the team, none for the serving team (see
    /// [`with_serving_team`]), whose callers change: the helper's job, queued on that
    /// thread's own pool, may be run by it while it waits in a nested rayon call of a
    /// piece (or of a callback), and must then return at once.
    lead: Option<ThreadId>,
}

fn pack(job: u32, front: usize, back: usize) -> u64 {
    (u64::from(job) << 32) | ((front as u64) << 16) | back as u64
}

fn unpack(word: u64) -> (u32, usize, usize) {
    (
        (word >> 32) as u32,
        (word >> 16) as usize & 0xFFFF,
        word as usize & 0xFFFF,
    )
}

impl Shared {
    /// Claims a piece of job `job`, from the front or the back; `None` once all are
    /// claimed (or the job is over).
    fn claim(&self, job: u32, from_front: bool) -> Option<usize> {
        let mut word = self.claims.load(Ordering::Acquire);
        loop {
            let (current, front, back) = unpack(word);
            if current != job || front >= back {
                return None;
            }
            let (next, piece) = if from_front {
                (pack(job, front + 1, back), front)
            } else {
                (pack(job, front, back - 1), back - 1)
            };
            match self
                .claims
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(piece),
                Err(seen) => word = seen,
            }
        }
    }
}

/// The team of a fit ([`with_team`]), of a prediction ([`with_team_in`]), or the
/// process's serving team ([`with_serving_team`]).
pub(crate) struct Team {
    shared: Arc<Shared>,
    /// The number of the last job (only the caller publishes jobs).
    jobs: Cell<u32>,
    /// A job is running: a nested one (a piece's own products) runs on its thread.
    busy: Cell<bool>,
    /// Until when the caller runs the jobs alone, and the length of that spell.
    solo: Cell<(Option<Instant>, Duration)>,
    /// Jobs of the current window, those the helper took no piece of, and those the
    /// caller waited long for.
    window: Cell<(u32, u32, u32)>,
    /// When to run jobs alone to compare (see [`PROBE_JOBS`]).
    probe: Cell<Probe>,
}

thread_local! {
    /// The team of the fit running on this thread, while it is entered.
    static CURRENT: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// While alive, [`try_for_each`] on this thread uses the team it was entered from.
pub(crate) struct Entered<'t> {
    previous: *const Team,
    _team: std::marker::PhantomData<&'t Team>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

impl Team {
    fn new(serving: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                claims: AtomicU64::new(0),
                job: AtomicPtr::new(std::ptr::null_mut()),
                done: AtomicUsize::new(0),
                sleeping: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                panic: Mutex::new(None),
                helper: OnceLock::new(),
                caller_cpu: AtomicUsize::new(usize::MAX),
                stay: AtomicBool::new(false),
                lead: (!serving).then(|| thread::current().id()),
            }),
            jobs: Cell::new(0),
            busy: Cell::new(false),
            solo: Cell::new((None, FIRST_SOLO)),
            window: Cell::new((0, 0, 0)),
            probe: Cell::new(Probe::default()),
        }
    }

    /// Makes this team the one [`try_for_each`] uses on this thread until the guard
    /// drops.
    fn enter(&self) -> Entered<'_> {
        let previous = CURRENT.with(|c| c.replace(self as *const Team));
        Entered {
            previous,
            _team: std::marker::PhantomData,
        }
    }

    /// Runs `piece(i)` for every `i < n` on the caller and the helper.
    fn run(&self, n: usize, piece: &(dyn Fn(usize) + Sync)) {
        if n <= 1 || n > MAX_PIECES || self.busy.get() || self.solo() {
            return (0..n).for_each(piece);
        }
        if self.probe.get().alone_left > 0 {
            return self.run_probe(n, piece);
        }
        let begun = Instant::now();
        self.busy.set(true);
        let shared = &self.shared;
        let job = Job { piece };
        let number = self.jobs.get().wrapping_add(1);
        self.jobs.set(number);
        shared.done.store(0, Ordering::Relaxed);
        // SAFETY (of the lifetime's erasure): the job is read only by a thread holding
        // one of its pieces, and this call returns only when every piece is finished.
        let erased = &job as *const Job<'_> as *mut Job<'static>;
        shared.job.store(erased, Ordering::Relaxed);
        shared.note_caller_cpu();
        // publishes the job and the reset count with it
        shared.claims.store(pack(number, 0, n), Ordering::SeqCst);
        if shared.sleeping.swap(false, Ordering::SeqCst) {
            shared.wake();
            if shared.serving() {
                // (as in `lead`: woken on this CPU, it would wait behind this thread;
                // a fit's helper asleep mid-fit gained nothing from it: C4 after an
                // idle moment 13.1-13.3 ms a fit with it for every team, 12.7-13.0 without)
                thread::yield_now();
            }
        }
        let mut mine = 0;
        let mut caught = None;
        let started = Instant::now();
        while let Some(i) = shared.claim(number, true) {
            mine += 1;
            if caught.is_none() {
                caught = panic::catch_unwind(AssertUnwindSafe(|| piece(i))).err();
            }
        }
        let worked = started.elapsed();
        let waited = self.wait_for_helper(n - mine);
        if shared.helper.get().is_some() {
            self.keep_up(mine == n, waited_long(waited, worked));
            self.probe.set(self.probe.get().teamed(begun.elapsed()));
        }
        self.busy.set(false);
        let theirs = shared
            .panic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(payload) = caught.or(theirs) {
            panic::resume_unwind(payload);
        }
    }

    /// Runs a job alone for a probe (see [`PROBE_JOBS`]), timed; starts a spell alone
    /// when the probe ends with alone faster twice. (A nested job runs alone too.)
    fn run_probe(&self, n: usize, piece: &(dyn Fn(usize) + Sync)) {
        let begun = Instant::now();
        self.busy.set(true);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| (0..n).for_each(piece)));
        self.busy.set(false);
        if let Err(payload) = caught {
            panic::resume_unwind(payload);
        }
        let (probe, alone_faster) = self.probe.get().alone(begun.elapsed());
        self.probe.set(probe);
        if alone_faster {
            self.start_spell();
        }
    }

    /// Runs the jobs alone from now on for a spell ([`next_spell`]'s length).
    fn start_spell(&self) {
        let now = Instant::now();
        let length = next_spell(self.solo.get(), now);
        self.solo.set((Some(now + length), length));
    }

    /// Waits until the helper has finished its `pieces` of the current job; returns how
    /// long.
    fn wait_for_helper(&self, pieces: usize) -> Duration {
        let done = || self.shared.done.load(Ordering::Acquire) >= pieces;
        if done() {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while !done() {
            spins += 1;
            if spins < WAIT_SPINS {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        start.elapsed()
    }

    /// Whether the caller runs jobs alone now.
    fn solo(&self) -> bool {
        self.solo
            .get()
            .0
            .is_some_and(|until| Instant::now() < until)
    }

    /// Counts a job the helper took no piece of (`missed`), or whose pieces the caller
    /// waited long for (`long`); starts a spell alone when the helper is not keeping up.
    fn keep_up(&self, missed: bool, long: bool) {
        let (window, lagging) = count(self.window.get(), missed, long);
        self.window.set(window);
        if lagging {
            self.shared.stay.store(true, Ordering::Relaxed);
            self.start_spell();
        }
    }
}

/// Whether the caller's wait for the helper's pieces counts as long (see [`WINDOW`]):
/// longer than [`LONG_WAIT`] and than its own `worked` time on the job.
fn waited_long(waited: Duration, worked: Duration) -> bool {
    waited > LONG_WAIT.max(worked)
}

/// The window of jobs after one more (see [`WINDOW`]), and whether the helper is not
/// keeping up (the window then starts again).
fn count(
    (jobs, misses, waits): (u32, u32, u32),
    missed: bool,
    long: bool,
) -> ((u32, u32, u32), bool) {
    let jobs = jobs + 1;
    let misses = misses + u32::from(missed);
    let waits = waits + u32::from(long);
    if waits >= 2 || 2 * misses >= WINDOW {
        ((0, 0, 0), true)
    } else if jobs >= WINDOW {
        ((0, 0, 0), false)
    } else {
        ((jobs, misses, waits), false)
    }
}

/// The length of a spell alone starting at `now`, after the last one (its end and
/// length): twice as long when that one ended recently (the core is still shared),
/// else the first length again.
fn next_spell((end, length): (Option<Instant>, Duration), now: Instant) -> Duration {
    match end {
        Some(end) if now.saturating_duration_since(end) < length => (2 * length).min(LONGEST_SOLO),
        _ => FIRST_SOLO,
    }
}

/// Where a team stands in its probes (see [`PROBE_JOBS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Probe {
    /// Whole windows of [`PROBE_JOBS`] jobs run with the helper since the last probe...
    windows: u32,
    /// ...the jobs of the current one and their time, and the time of the last whole one.
    jobs: u32,
    window: Duration,
    last_window: Duration,
    /// Jobs still to run alone in the probe under way (none: no probe), and the time
    /// of those run.
    alone_left: u32,
    alone_time: Duration,
    /// A probe ran, and the last one found alone faster (the next one is then due
    /// after one window, and a spell follows if it finds the same).
    probed: bool,
    again: bool,
}

impl Probe {
    /// After a job run with the helper in `time`: a probe starts at the end of a window
    /// once it is due.
    fn teamed(mut self, time: Duration) -> Self {
        self.jobs += 1;
        self.window += time;
        if self.jobs == PROBE_JOBS {
            self.last_window = std::mem::take(&mut self.window);
            self.jobs = 0;
            self.windows += 1;
            let due = match (self.again, self.probed) {
                (true, _) => 1,
                (false, false) => FIRST_PROBE,
                (false, true) => PROBE_PERIOD,
            };
            if self.windows >= due {
                (self.alone_left, self.alone_time) = (PROBE_JOBS, Duration::ZERO);
            }
        }
        self
    }

    /// After a job of the probe run alone in `time`; at the probe's end, whether alone
    /// was faster than the window before it, as in the probe before.
    fn alone(mut self, time: Duration) -> (Self, bool) {
        self.alone_time += time;
        self.alone_left -= 1;
        if self.alone_left > 0 {
            return (self, false);
        }
        let faster = self.alone_time < self.last_window;
        self.windows = 0;
        self.probed = true;
        // (a verdict needs two probes in a row: one window of tiny jobs that a single
        // interrupt slowed would otherwise send a fit alone)
        let spell = faster && self.again;
        self.again = faster;
        (self, spell)
    }
}

impl Shared {
    fn serving(&self) -> bool {
        self.lead.is_none()
    }

    /// Records the CPU the caller runs on, for the helper ([`Shared::keep_away`]).
    fn note_caller_cpu(&self) {
        let cpu = affinity::current_cpu().unwrap_or(usize::MAX);
        self.caller_cpu.store(cpu, Ordering::Relaxed);
    }

    /// Moves the helper off the caller's last recorded CPU if it runs there, or, once
    /// it should stay, back to that CPU if it had left it (with its own mask back).
    fn keep_away(&self, away: &mut Away) {
        let cpu = self.caller_cpu.load(Ordering::Relaxed);
        if cpu == usize::MAX {
            return;
        }
        if self.stay.load(Ordering::Relaxed) {
            away.join(cpu);
        } else {
            away.leave(cpu);
        }
    }

    fn wake(&self) {
        if let Some(helper) = self.helper.get() {
            helper.unpark();
        }
    }
}

/// Stops the helper when dropped (at the end of [`with_team`], a panic included).
struct Stop<'a>(&'a Shared);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.wake();
    }
}

/// Runs `f` with a team on this thread and the other worker of its rayon pool (a pool
/// of two threads: the fit's own): [`try_for_each`], and [`crate::parallel::Par::Team`],
/// share their pieces between the two until `f` returns. The helper is a job of the
/// pool, so no thread is started; until it runs, the caller runs every piece. The
/// caller does not wait for that job's end: beside a busy process, whose CPU the
/// helper shares, that was up to a time slice per call (`partial_fit` and predictions
/// made one after another paid it every time).
pub(crate) fn with_team<R>(f: impl FnOnce() -> R) -> R {
    Team::new(false).lead(None, f)
}

/// [`with_team`] from a thread outside `pool` (a prediction's caller), with one of
/// `pool`'s workers as the helper: the caller computes too, instead of waiting for the
/// pool's workers to wake one after the other.
pub(crate) fn with_team_in<R>(pool: &rayon::ThreadPool, f: impl FnOnce() -> R) -> R {
    Team::new(false).lead(Some(pool), f)
}

/// [`with_team_in`] for predictions, with the process's serving team when no other
/// call holds it. Its helper is a thread of its own that outlives the call and spins
/// for [`SERVING_SPIN`] after it, and the team keeps what it learnt (a helper not
/// keeping up: calls alone for a spell) from call to call. A per-call helper, a pool
/// worker, began its block ~23 us after the caller on the Intel host, and the call
/// then waited at its end for that worker's job to return: beside a busy process, a
/// time slice of the shared CPU per call (`bench/load.py`'s W4: 17.8x one thread's
/// time, now 1.14-1.22x).
pub(crate) fn with_serving_team<R>(pool: &rayon::ThreadPool, f: impl FnOnce() -> R) -> R {
    let Some(team) = serving_team() else {
        return with_team_in(pool, f);
    };
    let team = match team.try_lock() {
        Ok(team) => team,
        // (a panic of an earlier call's `f` left the team as it was: `run` restores it)
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        // another thread's call, or this thread's own (a piece predicting)
        Err(TryLockError::WouldBlock) => return with_team_in(pool, f),
    };
    let _entered = team.enter();
    f()
}

/// This process's serving team, its helper started at first use; `None` when the
/// thread could not be started (not tried again).
fn serving_team() -> Option<Arc<Mutex<Team>>> {
    type Serving = Option<(u32, Option<Arc<Mutex<Team>>>)>;
    static SERVING: Mutex<Serving> = Mutex::new(None);
    let pid = std::process::id();
    let mut serving = SERVING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, team)) = &*serving {
        if *p == pid {
            return team.clone();
        }
    }
    // (a forked child has no helper thread: its parent's team is forgotten)
    std::mem::forget(serving.take());
    let team = Team::new(true);
    let shared = Arc::clone(&team.shared);
    let started = thread::Builder::new()
        .name("mlp_rs-serve".into())
        .spawn(move || help(&shared));
    let team = started.ok().map(|_| Arc::new(Mutex::new(team)));
    *serving = Some((pid, team.clone()));
    team
}

impl Team {
    /// Starts the helper as a job of `pool` (else of this thread's pool, as
    /// `rayon::spawn` finds it) and runs `f` with this team entered.
    fn lead<R>(&self, pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R) -> R {
        let shared = &self.shared;
        shared.note_caller_cpu();
        // (the job holds the shared state itself: it may start, or end, after `f`)
        let mine = Arc::clone(shared);
        let job = move || help(&mine);
        match pool {
            Some(pool) => pool.spawn(job),
            None => rayon::spawn(job),
        }
        // A helper woken on this CPU would wait behind this thread for a time slice
        // (milliseconds) before it could move away; the yield lets it start now.
        thread::yield_now();
        let _stop = Stop(shared);
        let _entered = self.enter();
        f()
    }
}

/// The helper's life: each new job's pieces from the back, spinning between jobs for
/// [`SPIN`] ([`SERVING_SPIN`] for the serving team), then asleep until a job or the
/// stop; off the caller's CPU when it finds itself there ([`Away`]).
fn help(shared: &Shared) {
    if shared.lead == Some(thread::current().id()) {
        // (its own caller, waiting in a nested call: it would wait for itself; the
        // caller runs every piece, as when the helper is away)
        return;
    }
    // (woken by the caller, this thread may have started on its CPU, behind it; the
    // jobs the caller runs alone meanwhile are not its misses)
    let mut away = Away::default();
    shared.keep_away(&mut away);
    // (a team has one helper job: the cell is empty here)
    let _ = shared.helper.set(thread::current());
    let mut seen = 0u32;
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    let spin = if shared.serving() { SERVING_SPIN } else { SPIN };
    loop {
        let (number, _, _) = unpack(shared.claims.load(Ordering::Acquire));
        if number != seen {
            seen = number;
            shared.keep_away(&mut away);
            run_pieces(shared, number);
            idle_since = Instant::now();
            continue;
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) || idle_since.elapsed() < spin {
            std::hint::spin_loop();
            continue;
        }
        // asleep: the caller sees the flag after publishing a job (or this thread sees
        // the job): both are sequentially consistent, so no job goes unnoticed
        shared.sleeping.store(true, Ordering::SeqCst);
        let (number, _, _) = unpack(shared.claims.load(Ordering::SeqCst));
        if number == seen && !shared.stop.load(Ordering::SeqCst) {
            if shared.serving() {
                // between calls: the whole mask back, and a fresh start at the next one
                away = Away::default();
                shared.stay.store(false, Ordering::Relaxed);
            }
            thread::park();
        }
        shared.sleeping.store(false, Ordering::SeqCst);
        idle_since = Instant::now();
    }
}

/// Runs the pieces of job `number` the helper can claim.
fn run_pieces(shared: &Shared, number: u32) {
    let job = shared.job.load(Ordering::Acquire);
    while let Some(i) = shared.claim(number, false) {
        // SAFETY: the claim succeeded, so job `number` is still running and `job` (read
        // after its number was seen) is its job, alive until this piece is counted.
        let piece = unsafe { (*job).piece };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| piece(i))) {
            let mut slot = shared.panic.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(payload);
        }
        shared.done.fetch_add(1, Ordering::Release);
    }
}

/// Whether the team entered on this thread runs its jobs alone for now (a spell: its
/// helper is not keeping up), so that a call can take the one-thread path from the
/// start rather than run a two-thread plan's pieces one after the other.
pub(crate) fn runs_alone() -> bool {
    let team = CURRENT.with(Cell::get);
    // SAFETY: as in `try_for_each`.
    !team.is_null() && unsafe { &*team }.solo()
}

/// Runs `f(i)` for every `i < n` on the team entered on this thread (one thread when
/// there is none), stopping at an error: the pieces not yet started are skipped, and
/// the error of the lowest failed piece is returned.
pub(crate) fn try_for_each<E: Send>(
    n: usize,
    f: impl Fn(usize) -> Result<(), E> + Send + Sync,
) -> Result<(), E> {
    let team = CURRENT.with(Cell::get);
    if team.is_null() {
        return (0..n).try_for_each(f);
    }
    let failed = AtomicBool::new(false);
    let lowest: Mutex<Option<(usize, E)>> = Mutex::new(None);
    let piece = |i: usize| {
        if failed.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = f(i) {
            failed.store(true, Ordering::Relaxed);
            let mut lowest = lowest.lock().unwrap_or_else(|e| e.into_inner());
            if lowest.as_ref().is_none_or(|(j, _)| i < *j) {
                *lowest = Some((i, e));
            }
        }
    };
    // SAFETY: `CURRENT` points at a team only while its `Entered` guard lives, which
    // borrows the team.
    unsafe { &*team }.run(n, &piece);
    match lowest.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// `f` with a team of two threads.
    fn teamed(f: impl FnOnce() + Send) {
        crate::parallel::with_threads(2, |_| with_team(f)).unwrap();
    }

    #[test]
    fn every_piece_runs_once_and_errors_come_back() {
        teamed(every_piece_once);
    }

    fn every_piece_once() {
        for n in [0, 1, 2, 3, 7, 64] {
            for _ in 0..200 {
                every_piece_once_of(n)();
            }
        }
        let result = try_for_each(8, |i| if i == 5 { Err(i) } else { Ok(()) });
        assert_eq!(result, Err(5));
    }

    #[test]
    fn wakes_after_sleeping_and_passes_panics_on() {
        teamed(wakes_and_passes_panics_on);
    }

    fn wakes_and_passes_panics_on() {
        let total = AtomicUsize::new(0);
        for round in 0..5 {
            // past the spin: the helper sleeps, and the next job must still complete
            thread::sleep(SPIN * 3);
            try_for_each(4, |i| {
                total.fetch_add(i + round, Ordering::Relaxed);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), 5 * 6 + 4 * 10);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            let _ = try_for_each(2, |i| {
                assert!(i != 1, "piece one fails");
                Ok::<(), ()>(())
            });
        }));
        assert!(caught.is_err());
        // the team still works after a panic
        assert_eq!(try_for_each(3, |_| Ok::<(), ()>(())), Ok(()));
    }

    #[test]
    fn a_helper_that_does_not_keep_up_is_left_alone_longer_and_longer() {
        let quick = false;
        // half of a window missed: lagging; fewer, or a full window: not
        let mut window = (0, 0, 0);
        let mut lagging = false;
        for j in 0..WINDOW / 2 {
            assert!(!lagging, "{j}");
            (window, lagging) = count(window, true, quick);
        }
        assert!(lagging);
        assert_eq!(window, (0, 0, 0));
        let mut window = (0, 0, 0);
        for j in 0..WINDOW {
            let (w, lagging) = count(window, j % 4 == 0, quick);
            assert!(!lagging, "{j}");
            window = w;
        }
        assert_eq!(window, (0, 0, 0));
        // a wait is long past LONG_WAIT and the caller's own work
        let us = Duration::from_micros;
        assert!(waited_long(us(300), us(100)));
        assert!(!waited_long(us(150), us(10)));
        assert!(!waited_long(us(500), us(800)));
        // two long waits in a window are enough, one is not
        let long = true;
        assert_eq!(count((3, 0, 0), false, long), ((4, 0, 1), false));
        assert_eq!(count((4, 0, 1), false, long), ((0, 0, 0), true));
        let mut window = (0, 0, 0);
        for j in 0..3 * WINDOW {
            let (w, lagging) = count(window, false, if j % WINDOW == 5 { long } else { quick });
            assert!(!lagging, "{j}");
            window = w;
        }
        // spells double while they follow each other, up to the longest
        let t0 = Instant::now();
        assert_eq!(next_spell((None, FIRST_SOLO), t0), FIRST_SOLO);
        let end = t0 + FIRST_SOLO;
        assert_eq!(next_spell((Some(end), FIRST_SOLO), end), 2 * FIRST_SOLO);
        let late = end + 3 * FIRST_SOLO;
        assert_eq!(next_spell((Some(end), FIRST_SOLO), late), FIRST_SOLO);
        let longest = (Some(end), LONGEST_SOLO);
        assert_eq!(next_spell(longest, end), LONGEST_SOLO);
    }

    #[test]
    fn the_helper_gets_its_cpus_back() {
        let cpus = crate::affinity::own_cpus();
        crate::parallel::with_pool(2, |pool| {
            pool.install(|| {
                with_team(|| {
                    // jobs long enough for the helper to join (and perhaps move)
                    for _ in 0..50 {
                        try_for_each(2, |_| {
                            let start = Instant::now();
                            while start.elapsed() < Duration::from_micros(100) {}
                            Ok::<_, ()>(())
                        })
                        .unwrap();
                    }
                })
            });
            // both workers have the mask they started with
            let masks = pool.broadcast(|_| crate::affinity::own_cpus());
            assert!(masks.iter().all(|m| *m == cpus));
        })
        .unwrap();
    }

    /// The serving team: every piece once, call after call (also after its helper
    /// slept), from two threads at once (one then on a team of its own) and from inside
    /// a piece; a panic is passed on and the team works after it.
    #[test]
    fn serving_calls_run_every_piece_once() {
        crate::parallel::with_pool(2, |pool| {
            let call = |round: usize| {
                if round.is_multiple_of(8) {
                    thread::sleep(SERVING_SPIN * 3);
                }
                with_serving_team(pool, every_piece_once_of(round % 9));
            };
            thread::scope(|s| {
                s.spawn(|| (0..40).for_each(call));
                (0..40).for_each(call);
            });
            let inner = AtomicUsize::new(0);
            with_serving_team(pool, || {
                try_for_each(2, |_| {
                    with_serving_team(pool, || {
                        try_for_each(3, |_| {
                            inner.fetch_add(1, Ordering::Relaxed);
                            Ok::<(), ()>(())
                        })
                    })
                })
            })
            .unwrap();
            assert_eq!(inner.load(Ordering::Relaxed), 6);
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                with_serving_team(pool, || {
                    let _ = try_for_each(2, |i| {
                        assert!(i != 1, "piece one fails");
                        Ok::<(), ()>(())
                    });
                })
            }));
            assert!(caught.is_err());
            with_serving_team(pool, every_piece_once_of(5));
        })
        .unwrap();
    }

    /// Runs jobs of `teamed` and `alone` time through `probe` until a probe ends:
    /// the team jobs before it and whether it found alone faster.
    fn until_a_probe_ends(probe: &mut Probe, teamed: Duration, alone: Duration) -> (u32, bool) {
        let mut jobs = 0;
        loop {
            if probe.alone_left > 0 {
                let (next, faster) = probe.alone(alone);
                *probe = next;
                if probe.alone_left == 0 {
                    return (jobs, faster);
                }
            } else {
                *probe = probe.teamed(teamed);
                jobs += 1;
            }
        }
    }

    /// Probes come after the first windows, then every [`PROBE_PERIOD`] windows; one
    /// finding alone faster brings the next after one window, and a spell when
    /// that one agrees; alone as fast as the team is no verdict.
    #[test]
    fn probes_run_alone_now_and_then() {
        let mut probe = Probe::default();
        let (w, period) = (PROBE_JOBS, PROBE_PERIOD * PROBE_JOBS);
        // (a probe's jobs alone in us, against 100 us with the helper: the team jobs
        // run before it, and whether a spell follows)
        let steps = [
            (200, FIRST_PROBE * w, false),
            (200, period, false),
            // alone as fast as the team: not faster
            (100, period, false),
            // alone faster: a second probe after one window, a spell if it agrees
            (60, period, false),
            (60, w, true),
            (60, w, true),
            (200, w, false),
            (200, period, false),
            // one probe finding alone faster, then one not: no spell
            (90, period, false),
            (105, w, false),
            (60, period, false),
        ];
        for (i, (alone, jobs, spell)) in steps.into_iter().enumerate() {
            let us = Duration::from_micros;
            let found = until_a_probe_ends(&mut probe, us(100), us(alone));
            assert_eq!(found, (jobs, spell), "step {i}");
        }
    }

    /// A probe comes once the team has run its first windows, runs its jobs on the
    /// caller, times both sides (each piece sleeps: at least 1 ms with the helper,
    /// 0.1 ms alone, as on two hyperthreads of one core), and starts a spell exactly
    /// when it and the probe before found alone faster. (Which it finds depends on the machine's load, so
    /// it is not asserted: `probes_run_alone_now_and_then` checks the verdicts.)
    #[test]
    fn a_probe_runs_alone_and_its_verdict_decides_a_spell() {
        teamed(|| {
            // SAFETY: inside `with_team`, which entered the team on this thread.
            let team = unsafe { &*CURRENT.with(Cell::get) };
            while team.shared.helper.get().is_none() {
                thread::sleep(Duration::from_millis(1));
            }
            let caller = thread::current().id();
            let job = |alone: bool| {
                let count = AtomicUsize::new(0);
                try_for_each(2, |_| {
                    assert!(!alone || thread::current().id() == caller);
                    let us = if alone { 100 } else { 1000 };
                    thread::sleep(Duration::from_micros(us));
                    count.fetch_add(1, Ordering::Relaxed);
                    Ok::<(), ()>(())
                })
                .unwrap();
                assert_eq!(count.load(Ordering::Relaxed), 2);
            };
            // (a second probe, one window after the first, when that found alone faster)
            for _ in 0..2 {
                while team.probe.get().alone_left == 0 {
                    job(team.solo());
                }
                let (spell, again) = (team.solo.get(), team.probe.get().again);
                while team.probe.get().alone_left > 0 {
                    job(true);
                }
                let probe = team.probe.get();
                assert!(probe.probed);
                assert!(probe.last_window >= PROBE_JOBS * Duration::from_millis(1));
                assert!(probe.alone_time >= 2 * PROBE_JOBS * Duration::from_micros(100));
                assert_eq!(team.solo.get() != spell, again && probe.again);
                if !probe.again {
                    break;
                }
            }
        });
    }

    /// A team whose helper is found not keeping up says it runs alone (and runs every
    /// piece on its caller) until its spell ends; no team, or one keeping up, does not.
    #[test]
    fn a_team_in_a_spell_runs_alone() {
        assert!(!runs_alone());
        teamed(|| {
            assert!(!runs_alone());
            // SAFETY: inside `with_team`, which entered the team on this thread.
            let team = unsafe { &*CURRENT.with(Cell::get) };
            team.keep_up(false, true);
            assert!(!runs_alone(), "one long wait is not a verdict");
            team.keep_up(false, true);
            assert!(runs_alone());
            let caller = thread::current().id();
            try_for_each(16, |_| {
                assert_eq!(thread::current().id(), caller);
                Ok::<(), ()>(())
            })
            .unwrap();
            team.solo.set((Some(Instant::now()), FIRST_SOLO));
            assert!(!runs_alone(), "the spell is over");
        });
    }

    /// The helper's job, queued on the caller's own pool, run by the caller itself (in
    /// a nested rayon wait while the pool's other worker is busy) returns at once, and
    /// the caller runs every piece: it waited for itself before (a fit started from
    /// another fit's callback hung that way beside a busy process).
    #[test]
    fn a_helper_job_run_by_its_caller_returns() {
        let (done, finished) = std::sync::mpsc::channel();
        thread::spawn(move || {
            crate::parallel::with_pool(2, |pool| pool.install(caller_runs_its_helper_job)).unwrap();
            let _ = done.send(());
        });
        let waited = finished.recv_timeout(Duration::from_secs(60));
        assert!(waited.is_ok(), "the caller waited for itself");
    }

    fn caller_runs_its_helper_job() {
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (Arc::clone(&started), Arc::clone(&release));
        // the pool's other worker, busy until released
        rayon::spawn(move || {
            s.store(true, Ordering::SeqCst);
            while !r.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        });
        while !started.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        with_team(|| {
            // runs a job queued on this thread: the helper's
            assert_eq!(rayon::yield_now(), Some(rayon::Yield::Executed));
            every_piece_once_of(7)();
        });
        release.store(true, Ordering::SeqCst);
    }

    fn every_piece_once_of(n: usize) -> impl FnOnce() {
        move || {
            let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
            try_for_each(n, |i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
                Ok::<(), ()>(())
            })
            .unwrap();
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn without_a_team_runs_in_order() {
        let order = Mutex::new(Vec::new());
        try_for_each(4, |i| {
            order.lock().unwrap().push(i);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }
}

//! Keeping a team's two threads on two CPUs.
//!
//! Some virtual machines' guest kernels (the Intel host's 6.18 with
//! `kernel.sched_vcpu_pack`) wake a thread on the CPU of the thread that woke it and
//! leave it there while the other CPU idles. A fit started after an idle moment woke its
//! team's helper on the caller's CPU, and the two threads then took turns on that one
//! CPU for the whole fit (`perf sched timehist`; `bench/profile.md`, "The helper on its
//! caller's CPU"): slower than one thread. A helper that finds itself on its caller's
//! CPU therefore leaves it ([`Away`]): its affinity mask loses that CPU until the team
//! ends, or finds the helper's CPU busy with other work and sends it back to the
//! caller's ([`Away::join`], where the scheduler had put it), with the mask it had. (A
//! mask narrowed for a moment only let the kernel pack the two threads again at the
//! next wake-up; one kept narrow tied the helper to a busy process's CPU.) Only the
//! helper's own mask changes, and only when it has another CPU to go to; elsewhere
//! than on Linux nothing changes.

/// The CPU this thread runs on, when the system says.
pub(crate) fn current_cpu() -> Option<usize> {
    imp::current_cpu()
}

/// The calling thread's affinity while it keeps away from another thread's CPU; the
/// mask it had comes back with [`Away::join`] or on drop.
#[derive(Default)]
pub(crate) struct Away(imp::Saved);

impl Away {
    /// Leaves `cpu` when this thread runs on it (and may run elsewhere): the kernel
    /// moves it to another CPU of its mask before this returns.
    pub(crate) fn leave(&mut self, cpu: usize) {
        if current_cpu() == Some(cpu) {
            self.0.exclude(cpu);
        }
    }

    /// If this thread left a CPU: its mask as it was, and a move to `cpu` (the mask
    /// narrowed to that CPU for a moment). Otherwise nothing: the scheduler places it.
    pub(crate) fn join(&mut self, cpu: usize) {
        if self.0.restore() && current_cpu().is_some_and(|c| c != cpu) {
            imp::visit(cpu);
        }
    }
}

impl Drop for Away {
    fn drop(&mut self) {
        let _ = self.0.restore();
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::mem::{size_of, MaybeUninit};

    pub(super) fn current_cpu() -> Option<usize> {
        // SAFETY: no arguments; -1 on failure.
        usize::try_from(unsafe { libc::sched_getcpu() }).ok()
    }

    /// The mask a thread had before it excluded a CPU.
    #[derive(Default)]
    pub(super) struct Saved(Option<libc::cpu_set_t>);

    impl Saved {
        pub(super) fn exclude(&mut self, cpu: usize) {
            let Some(original) = self.0.or_else(own_mask) else {
                return;
            };
            if cpu >= 8 * size_of::<libc::cpu_set_t>() {
                return;
            }
            let mut others = original;
            // SAFETY: `cpu` is below the set's size (checked above).
            unsafe { libc::CPU_CLR(cpu, &mut others) };
            // SAFETY: a valid set.
            if unsafe { libc::CPU_COUNT(&others) } > 0 && set_own_mask(&others) {
                self.0 = Some(original);
            }
        }

        /// Whether there was a mask to restore.
        pub(super) fn restore(&mut self) -> bool {
            let Some(original) = self.0.take() else {
                return false;
            };
            // (a cpuset shrunk meanwhile may refuse it: the thread then keeps the
            // narrower mask, which still lets it run)
            set_own_mask(&original);
            true
        }
    }

    /// Moves this thread to `cpu`, if its mask has it, and leaves the mask as it was.
    pub(super) fn visit(cpu: usize) {
        let Some(original) = own_mask() else {
            return;
        };
        // SAFETY: `cpu` is checked against the set's size first.
        if cpu >= 8 * size_of::<libc::cpu_set_t>() || !unsafe { libc::CPU_ISSET(cpu, &original) } {
            return;
        }
        // SAFETY: a zeroed set is valid; `cpu` is below its size.
        let mut only = unsafe { MaybeUninit::<libc::cpu_set_t>::zeroed().assume_init() };
        unsafe { libc::CPU_SET(cpu, &mut only) };
        if set_own_mask(&only) {
            set_own_mask(&original);
        }
    }

    pub(super) fn own_mask() -> Option<libc::cpu_set_t> {
        let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: the set is writable and of the size given; 0 is this thread.
        let ok =
            unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) };
        // SAFETY: zeroed, then filled by the kernel on success.
        (ok == 0).then(|| unsafe { set.assume_init() })
    }

    fn set_own_mask(set: &libc::cpu_set_t) -> bool {
        // SAFETY: a valid set of the size given; 0 is this thread.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) == 0 }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn current_cpu() -> Option<usize> {
        None
    }

    #[derive(Default)]
    pub(super) struct Saved;

    impl Saved {
        pub(super) fn exclude(&mut self, _cpu: usize) {}
        pub(super) fn restore(&mut self) -> bool {
            false
        }
    }

    pub(super) fn visit(_cpu: usize) {}
}

/// This thread's CPUs (Linux), or None.
#[cfg(test)]
pub(crate) fn own_cpus() -> Option<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        let set = imp::own_mask()?;
        let n = 8 * std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: every index is below the set's size.
        Some(
            (0..n)
                .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
                .collect(),
        )
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_leaves_a_cpu_and_gets_its_mask_back() {
        let before = own_cpus();
        let Some(cpu) = current_cpu() else { return };
        let mut away = Away::default();
        away.leave(cpu);
        let during = own_cpus();
        if before.as_ref().is_some_and(|m| m.len() > 1) {
            // the mask lost `cpu`, and the kernel moved this thread off it
            assert!(!during.as_ref().unwrap().contains(&cpu));
            assert_ne!(current_cpu(), Some(cpu));
        }
        // leaving a CPU this thread is not on changes nothing
        away.leave(usize::MAX);
        assert_eq!(own_cpus(), during);
        // joining a CPU gives the mask back (where the thread then runs is the
        // scheduler's choice)
        away.join(cpu);
        assert_eq!(own_cpus(), before);
        // and dropped after leaving, it restores too
        let mut away = Away::default();
        away.leave(current_cpu().unwrap());
        drop(away);
        assert_eq!(own_cpus(), before);
    }
}

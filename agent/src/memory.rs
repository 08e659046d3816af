//! The agent's peak memory use, for the boot report.
//!
//! `VmHWM` from /proc/self/status is the peak resident set, but before Linux 6.2 the kernel
//! updates a task's RSS counters only every 64 page faults, so a small static PID 1 can
//! read as "4 kB". The page-table walk behind /proc/self/smaps_rollup is exact, so the
//! report takes the larger of the two.

use std::fs;

/// Peak resident memory in kB: the larger of `VmHWM` and the current `Rss`.
pub fn peak_kb() -> Option<u64> {
    let hwm = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| field_kb(&s, "VmHWM:"));
    let rss = fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| field_kb(&s, "Rss:"));
    hwm.max(rss)
}

/// The value of a `Name:   1234 kB` line in /proc status-style text.
pub fn field_kb(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tinit\nVmPeak:\t   9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(field_kb(status, "VmHWM:"), Some(1234));
        assert_eq!(field_kb(status, "VmRSS:"), Some(1000));
    }

    #[test]
    fn missing_or_malformed() {
        assert_eq!(field_kb("VmRSS:\t 1000 kB\n", "VmHWM:"), None);
        assert_eq!(field_kb("VmHWM:\t lots kB\n", "VmHWM:"), None);
        assert_eq!(field_kb("VmHWM:\t 12 MB\n", "VmHWM:"), None);
        assert_eq!(field_kb("", "VmHWM:"), None);
    }

    #[test]
    fn this_process_has_a_peak_of_at_least_its_rss() {
        let _touched = vec![1u8; 8 << 20];
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss = field_kb(&status, "VmRSS:").unwrap();
        let peak = peak_kb().unwrap();
        assert!(
            peak >= 8 * 1024 && peak + 64 >= rss,
            "peak {peak} kB, rss {rss} kB"
        );
    }
}

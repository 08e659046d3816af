//! The agent's peak memory use, from /proc/self/status, for the boot report.

/// `VmHWM` (peak resident set) in kB from the text of /proc/<pid>/status.
pub fn peak_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tinit\nVmPeak:\t   9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(peak_kb(status), Some(1234));
    }

    #[test]
    fn missing_or_malformed() {
        assert_eq!(peak_kb("VmRSS:\t 1000 kB\n"), None);
        assert_eq!(peak_kb("VmHWM:\t lots kB\n"), None);
        assert_eq!(peak_kb("VmHWM:\t 12 MB\n"), None);
        assert_eq!(peak_kb(""), None);
    }

    #[test]
    fn this_process_has_a_peak() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(peak_kb(&status).is_some_and(|kb| kb > 0));
    }
}

//! The clock's floor: the image's build time.
//!
//! A Raspberry Pi 3 has no battery-backed clock and QEMU's `virt` may start at 1970, so at
//! first boot the device's clock is often years behind. Nothing the device decides may
//! count as earlier than the image's build time (recorded in the initramfs by
//! `coreforge build-image`): a clock that is behind is set to it, and key expiry is checked
//! against the later of the two, so a backdated assertion cannot revive a key that was
//! revoked before the image was built. HTTPS (`identity/tls.rs`) reads the same clock.

use std::io;

use coreforge_assertions::Timestamp;
use log::{info, warn};

/// The time the device counts as now: the later of its clock `rtc` and `floor`.
pub fn at_least(rtc: Timestamp, floor: Timestamp) -> Timestamp {
    rtc.max(floor)
}

/// Sets the system clock (`CLOCK_REALTIME`) to `build_time` if it is earlier, saying so in
/// one line; returns the time the device counts as now ([`at_least`]), which holds even if
/// the clock could not be set.
pub fn raise_to(build_time: Timestamp) -> Timestamp {
    let rtc = Timestamp::now();
    if rtc >= build_time {
        return rtc;
    }
    match set_realtime(build_time) {
        Ok(()) => info!("clock was {rtc}, set to the image's build time {build_time}"),
        Err(e) => warn!(
            "clock is {rtc}, before the image's build time {build_time}, and cannot be set: \
             {e}; keys are checked at the build time all the same"
        ),
    }
    at_least(rtc, build_time)
}

/// `clock_settime(CLOCK_REALTIME, t)`, to the second.
fn set_realtime(t: Timestamp) -> io::Result<()> {
    // time_t is 32 bits on 32-bit glibc targets (armhf), 64 elsewhere.
    #[allow(clippy::useless_conversion)]
    let secs = libc::time_t::try_from(t.unix()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{t} does not fit this system's time_t"),
        )
    })?;
    let spec = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: `spec` is a valid, initialised timespec that outlives the call.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &spec) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_of_the_clock_and_the_floor_counts() {
        let build = Timestamp::parse("2026-12-02T18:00:00Z").unwrap();
        let epoch = Timestamp::from_unix(0);
        let later = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(at_least(epoch, build), build);
        assert_eq!(at_least(later, build), later);
        assert_eq!(at_least(build, build), build);
    }
}

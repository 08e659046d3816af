//! The disk's fixed measures: sectors, alignment, the regions a partition table keeps for
//! itself, and where a structure with no `offset` goes. Shared by the gadget's checks, the
//! layout and the partition tables; it depends on none of them.

/// A disk sector: the unit of partition tables.
pub const SECTOR: u64 = 512;

/// One mebibyte: where the first partition starts and what partitions align to.
pub const MIB: u64 = 1 << 20;

/// The start of a GPT disk no partition may use: protective MBR, header, 32 sectors of entries.
pub const GPT_RESERVED: u64 = 34 * SECTOR;

/// The end of a GPT disk: 32 sectors of backup entries and the backup header.
pub const GPT_BACKUP: u64 = 33 * SECTOR;

/// Where a structure without an `offset` goes: boot code (role `mbr`) at 0, anything else
/// at the next mebibyte after the previous structure (the first one at 1 MiB).
pub fn next_offset(previous_end: u64, boot_code: bool) -> u64 {
    if boot_code {
        return 0;
    }
    previous_end.max(MIB).div_ceil(MIB) * MIB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_without_offsets_go_to_the_next_mebibyte() {
        assert_eq!(next_offset(0, false), MIB);
        assert_eq!(next_offset(446, false), MIB);
        assert_eq!(next_offset(MIB, false), MIB);
        assert_eq!(next_offset(MIB + 1, false), 2 * MIB);
        assert_eq!(next_offset(257 * MIB, false), 257 * MIB);
        assert_eq!(next_offset(0, true), 0);
    }
}

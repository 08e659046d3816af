//! Writes the initramfs that embeds the agent.
#![forbid(unsafe_code)]

//! What coreforge knows about each board.
#![forbid(unsafe_code)]
